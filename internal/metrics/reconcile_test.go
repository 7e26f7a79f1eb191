package metrics

import (
	"testing"
	"time"
)

// A reconciliation sets its drift by kind, the drift left and its time, and
// shows the failure count at 0; a failure counts without touching the last
// reconciliation's gauges.
func TestReconciled(t *testing.T) {
	m := New()
	m.Reconciled("600001", map[string]int{"missing_here": 2, "status_differs": 0, "only_here_synced": 1}, 3, time.Unix(1_780_000_000, 0))
	wantLines(t, scrape(t, m),
		`iys_reconcile_drift{brand_code="600001",kind="missing_here"} 2`,
		`iys_reconcile_drift{brand_code="600001",kind="status_differs"} 0`,
		`iys_reconcile_drift{brand_code="600001",kind="only_here_synced"} 1`,
		`iys_reconcile_unrepaired_records{brand_code="600001"} 3`,
		`iys_reconcile_last_timestamp_seconds{brand_code="600001"} 1.78e+09`,
		`iys_reconcile_failures_total{brand_code="600001"} 0`)
	m.ReconcileFailed("600001")
	wantLines(t, scrape(t, m),
		`iys_reconcile_failures_total{brand_code="600001"} 1`,
		`iys_reconcile_unrepaired_records{brand_code="600001"} 3`)
}
