package metrics

import (
	"context"
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Deadline is one connector's pending records against İYS's 3-business-day
// limit, as `status` shows them (deadline.atRisk, deadline.tooOld).
type Deadline struct {
	BrandCode string
	AtRisk    int // will be past the limit by the next scheduled run
	TooOld    int // past it already: İYS refuses them unless it holds them
}

// Deadline reads are cached this long, so that frequent scrapes cost the
// database two index range counts per connector a minute at most.
const deadlineTTL = time.Minute

// deadlineTimeout bounds one read, within a scrape's own timeout.
const deadlineTimeout = 10 * time.Second

// WatchDeadlines reports each connector's Deadline as gauges, read by read
// when scraped or pushed (at most once a minute). When a read fails, the
// last values read stay and the failure is logged: an alert must not clear
// because the database is down. Call it once.
func (m *Metrics) WatchDeadlines(read func(context.Context) ([]Deadline, error), log *zap.Logger) {
	m.deadlines = &deadlineCollector{read: read, log: log, now: time.Now,
		atRisk: prometheus.NewDesc("iys_sync_deadline_at_risk_records",
			"Pending records that will be past İYS's 3-business-day limit by the next scheduled run, unless a run sends them first.",
			[]string{"brand_code"}, nil),
		tooOld: prometheus.NewDesc("iys_sync_deadline_too_old_records",
			"Pending records already past İYS's 3-business-day limit: İYS refuses them unless it holds them.",
			[]string{"brand_code"}, nil),
	}
	m.reg.MustRegister(m.deadlines)
}

type deadlineCollector struct {
	read           func(context.Context) ([]Deadline, error)
	log            *zap.Logger
	now            func() time.Time
	atRisk, tooOld *prometheus.Desc

	mu     gosync.Mutex
	readAt time.Time
	last   []Deadline
}

func (c *deadlineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.atRisk
	ch <- c.tooOld
}

func (c *deadlineCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.readAt.IsZero() || now.Sub(c.readAt) >= deadlineTTL {
		ctx, cancel := context.WithTimeout(context.Background(), deadlineTimeout)
		ds, err := c.read(ctx)
		cancel()
		c.readAt = now // a failed read too: the next try waits its minute
		if err != nil {
			c.log.Warn("reading the pending records' deadlines for the metrics failed: reporting the last ones read", zap.Error(err))
		} else {
			c.last = ds
		}
	}
	for _, d := range c.last {
		ch <- prometheus.MustNewConstMetric(c.atRisk, prometheus.GaugeValue, float64(d.AtRisk), d.BrandCode)
		ch <- prometheus.MustNewConstMetric(c.tooOld, prometheus.GaugeValue, float64(d.TooOld), d.BrandCode)
	}
}
