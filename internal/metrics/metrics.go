// Package metrics exposes iys-sync's Prometheus metrics and its /healthz and
// /readyz probes on IYS_METRICS_ADDR.
package metrics

import (
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/pull"
	engine "github.com/iys-sync/iys-sync/internal/sync"
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
	durations    *prometheus.HistogramVec
	failures     *prometheus.CounterVec
	lastRun      *prometheus.GaugeVec
	runFailed    *prometheus.GaugeVec
	deadlines    *deadlineCollector // nil until WatchDeadlines
	reconcile    reconcileMetrics
	webhook      webhookMetrics
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
			Name: "iys_requests_total", Help: "HTTP requests to İYS (each try and each login), by kind of call and result: " +
				"ok, throttled, transient, network, refused, auth, canceled or error.",
		}, []string{"endpoint", "result"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iys_sync_runs_total", Help: "Runs finished, by connector and status.",
		}, []string{"brand_code", "status"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iys_sync_pending_records", Help: "Records waiting to be sent, per connector, as of the last run.",
		}, []string{"brand_code"}),
		sinceSuccess: newSince("iys_sync_seconds_since_last_success", "iys_sync_last_success_timestamp_seconds",
			"the connector's last completed run (its installation while it has none)", nil),
		sincePull: newSince("iys_sync_seconds_since_last_pull", "iys_sync_last_pull_timestamp_seconds",
			"the connector's last pull from İYS that reached the feed's end (its installation while it has none)",
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
	m.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "iys_request_duration_seconds", Help: "Time from sending a request to İYS to reading its answer, by kind of call.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	}, []string{"endpoint"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "iys_sync_request_failures_total",
		Help: "İYS calls of a connector's run that failed after the client's retries, by call (submit, poll) and İYS code or class.",
	}, []string{"brand_code", "call", "result"})
	m.lastRun = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "iys_sync_last_run_status", Help: "How the connector's last run ended: 1 for its status (completed, partial, failed), 0 for the others.",
	}, []string{"brand_code", "status"})
	m.runFailed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "iys_sync_last_run_failed_records", Help: "Records the connector's last run set failed: their retry budget was spent.",
	}, []string{"brand_code"})
	m.reg.MustRegister(m.durations, m.failures, m.lastRun, m.runFailed)
	m.reconcile = newReconcileMetrics(m.reg)
	m.webhook = newWebhookMetrics(m.reg)
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

// Exchange counts one request to İYS and observes its duration: the İYS
// client's observer (iysclient.WithObserver).
func (m *Metrics) Exchange(e iysclient.Exchange) {
	m.requests.WithLabelValues(e.Endpoint, e.Result).Inc()
	m.durations.WithLabelValues(e.Endpoint).Observe(e.Duration.Seconds())
}

// runStatuses are the ends of a run the last-run gauge knows.
var runStatuses = []consent.RunStatus{consent.RunCompleted, consent.RunPartial, consent.RunFailed}

// Runs records the connectors' ends of a run (skipped ones are not runs);
// a completed one resets the connector's clock. A pending count that could
// not be read leaves the gauge as it was.
func (m *Metrics) Runs(sum engine.Summary, at time.Time) {
	for _, c := range sum.Connectors {
		if c.Skipped {
			continue
		}
		m.runs.WithLabelValues(c.BrandCode, string(c.Status)).Inc()
		for _, st := range runStatuses {
			v := 0.0
			if c.Status == st {
				v = 1
			}
			m.lastRun.WithLabelValues(c.BrandCode, string(st)).Set(v)
		}
		m.runFailed.WithLabelValues(c.BrandCode).Set(float64(c.Failed))
		if c.Pending >= 0 {
			m.pending.WithLabelValues(c.BrandCode).Set(float64(c.Pending))
		}
		if c.Status == consent.RunCompleted {
			m.sinceSuccess.set(c.BrandCode, at)
		}
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

// Succeeded records a connector's last completed run, e.g. read at start
// (or its installation, while it has none).
func (m *Metrics) Succeeded(brand string, at time.Time) { m.sinceSuccess.set(brand, at) }

// sinceCollector reports a moment per connector as a Unix timestamp and,
// computed at scrape time, the seconds since: a gauge of seconds set at the
// event would go stale between events. With a watchdog description it also
// reports the pull lag's level.
type sinceCollector struct {
	desc     *prometheus.Desc // seconds since
	stamp    *prometheus.Desc // the moment
	watchdog *prometheus.Desc
	mu       gosync.Mutex
	at       map[string]time.Time
	now      func() time.Time
}

func newSince(name, stampName, what string, watchdog *prometheus.Desc) *sinceCollector {
	return &sinceCollector{
		desc:     prometheus.NewDesc(name, "Seconds since "+what+".", []string{"brand_code"}, nil),
		stamp:    prometheus.NewDesc(stampName, "Unix time of "+what+".", []string{"brand_code"}, nil),
		watchdog: watchdog, at: map[string]time.Time{}, now: time.Now}
}

func (c *sinceCollector) set(brand string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at[brand] = t
}

func (c *sinceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.stamp
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
		ch <- prometheus.MustNewConstMetric(c.stamp, prometheus.GaugeValue, float64(t.UnixMilli())/1000, brand)
		if c.watchdog != nil {
			_, level := pull.Lag(t, t, now)
			ch <- prometheus.MustNewConstMetric(c.watchdog, prometheus.GaugeValue, float64(level), brand)
		}
	}
}
