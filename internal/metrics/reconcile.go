package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reconcileMetrics are the gauges of each connector's last reconciliation
// with İYS's daily files, and the count of those that failed.
type reconcileMetrics struct {
	drift      *prometheus.GaugeVec
	unrepaired *prometheus.GaugeVec
	last       *prometheus.GaugeVec
	failures   *prometheus.CounterVec
}

func newReconcileMetrics(reg *prometheus.Registry) reconcileMetrics {
	r := reconcileMetrics{
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iys_reconcile_drift",
			Help: "Drifting records the connector's last reconciliation found, by kind (missing_here, status_differs, only_here_synced).",
		}, []string{"brand_code", "kind"}),
		unrepaired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iys_reconcile_unrepaired_records",
			Help: "Drifting records the connector's last reconciliation left as they were (all of them in report mode).",
		}, []string{"brand_code"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iys_reconcile_last_timestamp_seconds",
			Help: "Unix time of the connector's last reconciliation that finished.",
		}, []string{"brand_code"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iys_reconcile_failures_total",
			Help: "Reconciliations of a connector's day that failed (İYS or the database did not answer, the window ended).",
		}, []string{"brand_code"}),
	}
	reg.MustRegister(r.drift, r.unrepaired, r.last, r.failures)
	return r
}

// Reconciled records a connector's reconciliation that finished at at: its
// drift by kind and the drift it left. Its failure count starts at 0.
func (m *Metrics) Reconciled(brand string, drift map[string]int, unrepaired int, at time.Time) {
	for kind, n := range drift {
		m.reconcile.drift.WithLabelValues(brand, kind).Set(float64(n))
	}
	m.reconcile.unrepaired.WithLabelValues(brand).Set(float64(unrepaired))
	m.reconcile.last.WithLabelValues(brand).Set(float64(at.UnixMilli()) / 1000)
	m.reconcile.failures.WithLabelValues(brand)
}

// ReconcileFailed counts a connector's reconciliation that failed; its last
// one's gauges stay.
func (m *Metrics) ReconcileFailed(brand string) { m.reconcile.failures.WithLabelValues(brand).Inc() }
