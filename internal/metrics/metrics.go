// Package metrics exposes iys-sync's Prometheus metrics and its /healthz and
// /readyz probes on IYS_METRICS_ADDR.
package metrics

import (
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/iys-sync/iys-sync/internal/pull"
)

// Metrics holds every collector, on a registry of its own so that tests and
// several instances in one process never collide.
type Metrics struct {
	reg          *prometheus.Registry
	records      *prometheus.CounterVec
	batches      *prometheus.HistogramVec
	requests     *prometheus.CounterVec
	runs         *prometheus.CounterVec
	pending      *prometheus.GaugeVec
	sinceSuccess *sinceCollector
	sincePull    *sinceCollector
	quarantined  *prometheus.CounterVec
}

// New registers the collectors, with Go's and the process's own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iys_sync_records_total", Help: "Consent records finished, by connector and outcome.",
		}, []string{"brand_code", "outcome"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "iys_sync_batch_duration_seconds", Help: "Time from claiming a batch to recording its results.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"brand_code"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iys_requests_total", Help: "Requests to İYS, by endpoint and result (HTTP status or İYS code).",
		}, []string{"endpoint", "result"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iys_sync_runs_total", Help: "Runs finished, by connector and status.",
		}, []string{"brand_code", "status"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iys_sync_pending_records", Help: "Records waiting to be sent, per connector, as of the last run.",
		}, []string{"brand_code"}),
		sinceSuccess: newSince("iys_sync_seconds_since_last_success", "Seconds since the connector's last completed run.", nil),
		sincePull: newSince("iys_sync_seconds_since_last_pull", "Seconds since the connector's last pull from İYS that reached the feed's end.",
			prometheus.NewDesc("iys_sync_pull_warning",
				"The pull watchdog: 1 when the last pull is over 5 days old, 2 over 7 days (changes lost from İYS's feed).",
				[]string{"brand_code"}, nil)),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.records, m.batches, m.requests, m.runs, m.pending, m.sinceSuccess, m.sincePull)
	m.quarantined = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "iys_pull_quarantined_total", Help: "Entries of İYS's changes feed that could not be read, kept in quarantine, by connector.",
	}, []string{"brand_code"})
	m.reg.MustRegister(m.quarantined)
	return m
}

// Registry is the registry the /metrics handler serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Records counts finished records of a connector with one outcome.
func (m *Metrics) Records(brand, outcome string, n int) {
	if n > 0 {
		m.records.WithLabelValues(brand, outcome).Add(float64(n))
	}
}

// Batch observes one batch's duration.
func (m *Metrics) Batch(brand string, d time.Duration) {
	m.batches.WithLabelValues(brand).Observe(d.Seconds())
}

// Request counts one request to İYS.
func (m *Metrics) Request(endpoint, result string) {
	m.requests.WithLabelValues(endpoint, result).Inc()
}

// Run records a finished run; a completed one resets the connector's clock.
// A negative pending (it could not be read) leaves the gauge as it was.
func (m *Metrics) Run(brand, status string, pending int, at time.Time) {
	m.runs.WithLabelValues(brand, status).Inc()
	if pending >= 0 {
		m.pending.WithLabelValues(brand).Set(float64(pending))
	}
	if status == "completed" {
		m.sinceSuccess.set(brand, at)
	}
}

// Pull records a pull that reached the feed's end (or, for a connector
// never pulled to its end, its installation, from which the lag counts).
func (m *Metrics) Pull(brand string, at time.Time) { m.sincePull.set(brand, at) }

// PullQuarantined counts feed entries of a connector kept in quarantine.
func (m *Metrics) PullQuarantined(brand string, n int) {
	if n > 0 {
		m.quarantined.WithLabelValues(brand).Add(float64(n))
	}
}

// Succeeded records a connector's last completed run, e.g. read at start.
func (m *Metrics) Succeeded(brand string, at time.Time) { m.sinceSuccess.set(brand, at) }

// sinceCollector reports, at scrape time, the seconds since a moment per
// connector: a gauge set at the event would go stale between events. With
// a watchdog description it also reports the pull lag's level.
type sinceCollector struct {
	desc     *prometheus.Desc
	watchdog *prometheus.Desc
	mu       gosync.Mutex
	at       map[string]time.Time
	now      func() time.Time
}

func newSince(name, help string, watchdog *prometheus.Desc) *sinceCollector {
	return &sinceCollector{desc: prometheus.NewDesc(name, help, []string{"brand_code"}, nil), watchdog: watchdog,
		at: map[string]time.Time{}, now: time.Now}
}

func (c *sinceCollector) set(brand string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at[brand] = t
}

func (c *sinceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	if c.watchdog != nil {
		ch <- c.watchdog
	}
}

func (c *sinceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for brand, t := range c.at {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, now.Sub(t).Seconds(), brand)
		if c.watchdog != nil {
			_, level := pull.Lag(t, t, now)
			ch <- prometheus.MustNewConstMetric(c.watchdog, prometheus.GaugeValue, float64(level), brand)
		}
	}
}
