package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/metrics/metricstest"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	_, body := get(t, m.Handler(func(context.Context) error { return nil }), "/metrics")
	return body
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, l+"\n") {
			t.Errorf("/metrics lacks %s\n%s", l, grep(body, l[:strings.IndexAny(l, "{ ")]))
		}
	}
}

// The last run's status is one gauge per status, 1 for the one it ended
// with; a later run moves it; a skipped connector had no run.
func TestLastRunStatus(t *testing.T) {
	m := New()
	at := time.Unix(1_780_000_000, 0)
	m.Runs(engine.Summary{Connectors: []engine.ConnectorSummary{
		{BrandCode: "600001", Status: consent.RunFailed, Failed: 4, Pending: engine.PendingUnknown},
		{BrandCode: "600002", Skipped: true},
	}}, at)
	body := scrape(t, m)
	wantLines(t, body,
		`iys_sync_last_run_status{brand_code="600001",status="failed"} 1`,
		`iys_sync_last_run_status{brand_code="600001",status="completed"} 0`,
		`iys_sync_last_run_status{brand_code="600001",status="partial"} 0`,
		`iys_sync_last_run_failed_records{brand_code="600001"} 4`,
		`iys_sync_runs_total{brand_code="600001",status="failed"} 1`)
	if strings.Contains(body, `"600002"`) || strings.Contains(body, "iys_sync_pending_records{") ||
		strings.Contains(body, "last_success_timestamp_seconds{") {
		t.Fatalf("a skipped connector, an unknown pending count or a failed run made a sample:\n%s", grep(body, "iys_sync_"))
	}

	m.Runs(engine.Summary{Connectors: []engine.ConnectorSummary{{BrandCode: "600001", Status: consent.RunCompleted, Pending: 0}}},
		at.Add(24*time.Hour))
	wantLines(t, scrape(t, m),
		`iys_sync_last_run_status{brand_code="600001",status="failed"} 0`,
		`iys_sync_last_run_status{brand_code="600001",status="completed"} 1`,
		`iys_sync_last_run_failed_records{brand_code="600001"} 0`,
		`iys_sync_pending_records{brand_code="600001"} 0`,
		`iys_sync_last_success_timestamp_seconds{brand_code="600001"} 1.7800864e+09`)
}

// The moments behind the seconds-since gauges are exported as timestamps,
// which stay true when pushed.
func TestTimestamps(t *testing.T) {
	m := New()
	m.Pull("600001", time.Unix(1_780_000_000, 500_000_000))
	m.Succeeded("600001", time.Unix(1_780_000_100, 0))
	wantLines(t, scrape(t, m),
		`iys_sync_last_pull_timestamp_seconds{brand_code="600001"} 1.7800000005e+09`,
		`iys_sync_last_success_timestamp_seconds{brand_code="600001"} 1.7800001e+09`)
}

func TestRequestFailuresByConnector(t *testing.T) {
	m := New()
	o := m.Observer()
	o.RequestFailed(engine.RequestFailure{BrandCode: "600001", Call: "Submit", Class: consent.ClassConfiguration})
	o.RequestFailed(engine.RequestFailure{BrandCode: "600001", Call: "poll", Class: consent.ClassTransient, Code: "H999"})
	wantLines(t, scrape(t, m),
		`iys_sync_request_failures_total{brand_code="600001",call="submit",result="configuration"} 1`,
		`iys_sync_request_failures_total{brand_code="600001",call="poll",result="H999"} 1`)
}

// Deadlines are read when scraped, at most once a minute; a failed read
// keeps the last values (an alert must not clear because the database is
// down) and is tried again a minute later.
func TestDeadlinesReadAtScrape(t *testing.T) {
	m := New()
	var reads int
	var fail bool
	atRisk := 5
	read := func(ctx context.Context) ([]Deadline, error) {
		reads++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the read has no deadline")
		}
		if fail {
			return nil, errors.New("database down")
		}
		return []Deadline{{BrandCode: "600001", AtRisk: atRisk, TooOld: 2}}, nil
	}
	m.WatchDeadlines(read, zap.NewNop())
	now := time.Unix(1_780_000_000, 0)
	m.deadlines.now = func() time.Time { return now }

	wantLines(t, scrape(t, m), `iys_sync_deadline_at_risk_records{brand_code="600001"} 5`,
		`iys_sync_deadline_too_old_records{brand_code="600001"} 2`)
	atRisk = 7
	now = now.Add(30 * time.Second)
	wantLines(t, scrape(t, m), `iys_sync_deadline_at_risk_records{brand_code="600001"} 5`)
	if reads != 1 {
		t.Fatalf("%d reads for two scrapes within a minute, want 1", reads)
	}
	now = now.Add(time.Minute)
	wantLines(t, scrape(t, m), `iys_sync_deadline_at_risk_records{brand_code="600001"} 7`)
	fail = true
	now = now.Add(time.Minute)
	wantLines(t, scrape(t, m), `iys_sync_deadline_at_risk_records{brand_code="600001"} 7`)
	now = now.Add(10 * time.Second)
	scrape(t, m)
	if reads != 3 {
		t.Fatalf("%d reads, want 3: a failed read is tried again after a minute, not at every scrape", reads)
	}
}

// A push replaces (PUT) or merges into (POST) the group job/instance, and
// carries the run's metrics without Go's, the process's and the
// scrape-time seconds-since gauges.
func TestPush(t *testing.T) {
	g := metricstest.NewGateway(t)
	m := New()
	m.Runs(engine.Summary{Connectors: []engine.ConnectorSummary{{BrandCode: "600001", Status: consent.RunCompleted, Pending: 2}}}, time.Now())
	m.Pull("600001", time.Now())
	if err := m.Push(context.Background(), g.URL, "600001", ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	if err := m.Push(context.Background(), g.URL+"/", "all", MergeIntoGroup); err != nil {
		t.Fatal(err)
	}
	pushes := g.Pushes()
	if len(pushes) != 2 {
		t.Fatalf("%d pushes, want 2", len(pushes))
	}
	for i, want := range []struct{ method, path string }{
		{http.MethodPut, "/metrics/job/iys-sync/instance/600001"},
		{http.MethodPost, "/metrics/job/iys-sync/instance/all"},
	} {
		p := pushes[i]
		if p.Method != want.method || p.Path != want.path {
			t.Errorf("push %d: %s %s, want %s %s", i, p.Method, p.Path, want.method, want.path)
		}
		for _, name := range []string{"iys_sync_runs_total", "iys_sync_pending_records", "iys_sync_last_run_status",
			"iys_sync_last_success_timestamp_seconds", "iys_sync_last_pull_timestamp_seconds"} {
			if _, ok := p.Families[name]; !ok {
				t.Errorf("push %d lacks %s", i, name)
			}
		}
		for name := range p.Families {
			if !pushed(name) {
				t.Errorf("push %d carries %s", i, name)
			}
		}
		if !strings.Contains(p.Families["iys_sync_pending_records"], `iys_sync_pending_records{brand_code="600001"} 2`) {
			t.Errorf("push %d: %s", i, p.Families["iys_sync_pending_records"])
		}
	}
	if len(pushes[0].Families) == 0 || pushes[0].Families["go_goroutines"] != "" {
		t.Error("Go's own metrics were pushed")
	}

	g.Answer(http.StatusInternalServerError)
	if err := m.Push(context.Background(), g.URL, "600001", ReplaceGroup); err == nil || !strings.Contains(err.Error(), "Pushgateway") {
		t.Fatalf("a refused push: err = %v", err)
	}
}

// A Pushgateway that does not answer holds the push no longer than its
// context (and PushTimeout).
func TestPushStopsWithItsContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := New().Push(ctx, srv.URL, "all", ReplaceGroup); err == nil {
		t.Fatal("a push that got no answer succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the push waited %v", d)
	}
}
