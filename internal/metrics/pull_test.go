package metrics

import (
	"context"
	"strings"
	"testing"
)

func TestPullQuarantinedCounts(t *testing.T) {
	m := New()
	m.PullQuarantined("600001", 2)
	m.PullQuarantined("600001", 1)
	m.PullQuarantined("600002", 0) // no sample for zero
	_, body := get(t, m.Handler(func(context.Context) error { return nil }), "/metrics")
	if !strings.Contains(body, `iys_pull_quarantined_total{brand_code="600001"} 3`) || strings.Contains(body, `"600002"`) {
		t.Fatalf("/metrics:\n%s", grep(body, "quarantined"))
	}
}
