package metrics

import (
	"strings"

	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// Observer feeds the engine's batch and request events into the metrics.
type Observer struct{ m *Metrics }

// Observer returns the engine hook of these metrics.
func (m *Metrics) Observer() Observer { return Observer{m: m} }

// BatchDone counts the batch's outcomes and observes its duration.
func (o Observer) BatchDone(b engine.BatchReport) {
	for outcome, n := range b.Tally.Outcomes {
		o.m.Records(b.BrandCode, string(outcome), n)
	}
	o.m.Batch(b.BrandCode, b.Duration)
}

// RequestFailed counts an İYS call of a connector's run that failed after
// the client's retries. Every try is counted apart, by the client's
// observer (Exchange).
func (o Observer) RequestFailed(f engine.RequestFailure) {
	result := string(f.Code)
	if result == "" {
		result = string(f.Class)
	}
	o.m.failures.WithLabelValues(f.BrandCode, strings.ToLower(f.Call), result).Inc()
}

var _ engine.Observer = Observer{}
