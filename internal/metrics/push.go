package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
)

// PushJob is the Pushgateway job of every push.
const PushJob = "iys-sync"

// PushTimeout bounds one push, connection and answer included.
const PushTimeout = 10 * time.Second

// PushMode says what a push does to its group at the Pushgateway.
type PushMode int

const (
	// ReplaceGroup replaces every metric of the group (HTTP PUT): the group
	// is exactly the last run's, with no leftover of an earlier one.
	ReplaceGroup PushMode = iota
	// MergeIntoGroup replaces only the metric families pushed (HTTP POST),
	// leaving the group's others as they were.
	MergeIntoGroup
)

// Push sends the metrics to the Pushgateway at url, grouped by job
// (PushJob) and instance, within PushTimeout. Left out: Go's and the
// process's own (a finished process's are of no use) and the seconds-since
// gauges, which are computed when scraped and would stand still at the
// Pushgateway (the timestamps say the same and stay true).
func (m *Metrics) Push(ctx context.Context, url, instance string, mode PushMode) error {
	ctx, cancel := context.WithTimeout(ctx, PushTimeout)
	defer cancel()
	p := push.New(url, PushJob).Grouping("instance", instance).
		Client(&http.Client{Timeout: PushTimeout}).
		Gatherer(prometheus.GathererFunc(m.gatherPushed))
	var err error
	if mode == MergeIntoGroup {
		err = p.AddContext(ctx)
	} else {
		err = p.PushContext(ctx)
	}
	if err != nil {
		return fmt.Errorf("push metrics to the Pushgateway: %w", err)
	}
	return nil
}

// gatherPushed is the registry's families less those not pushed.
func (m *Metrics) gatherPushed() ([]*dto.MetricFamily, error) {
	mfs, err := m.reg.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		if pushed(mf.GetName()) {
			out = append(out, mf)
		}
	}
	return out, err
}

func pushed(name string) bool {
	switch {
	case strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"):
		return false
	case strings.Contains(name, "_seconds_since_"), name == "iys_sync_pull_warning":
		return false
	}
	return true
}
