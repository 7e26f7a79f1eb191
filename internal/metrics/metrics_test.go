package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestMetricsExposition(t *testing.T) {
	m := New()
	m.Records("600001", "accepted", 7)
	m.Records("600001", "no_prior_record", 0) // no sample for zero
	m.Batch("600001", 250*time.Millisecond)
	m.Exchange(iysclient.Exchange{Endpoint: "submit_bulk", Result: iysclient.ResultOK, Duration: 300 * time.Millisecond})
	m.Runs(engine.Summary{Connectors: []engine.ConnectorSummary{{BrandCode: "600001", Status: consent.RunCompleted, Pending: 3}}},
		time.Now().Add(-90*time.Second))
	m.Pull("600001", time.Now().Add(-6*24*time.Hour))
	code, body := get(t, m.Handler(func(context.Context) error { return nil }), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`iys_sync_records_total{brand_code="600001",outcome="accepted"} 7`,
		`iys_sync_batch_duration_seconds_count{brand_code="600001"} 1`,
		`iys_requests_total{endpoint="submit_bulk",result="ok"} 1`,
		`iys_request_duration_seconds_bucket{endpoint="submit_bulk",le="0.32"} 1`,
		`iys_request_duration_seconds_bucket{endpoint="submit_bulk",le="0.16"} 0`,
		`iys_sync_runs_total{brand_code="600001",status="completed"} 1`,
		`iys_sync_pending_records{brand_code="600001"} 3`,
		`iys_sync_pull_warning{brand_code="600001"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `outcome="no_prior_record"`) {
		t.Error("a zero count made a sample")
	}
	// Seconds since: computed at scrape time, so about 90 s, not 0.
	if !strings.Contains(body, `iys_sync_seconds_since_last_success{brand_code="600001"} 9`) {
		t.Errorf("seconds since last success not about 90:\n%s", grep(body, "since_last_success"))
	}
	if !strings.Contains(body, `iys_sync_seconds_since_last_pull{brand_code="600001"} 5184`) {
		t.Errorf("seconds since last pull not about 6 days:\n%s", grep(body, "since_last_pull"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestProbes(t *testing.T) {
	var readyErr error
	h := New().Handler(func(context.Context) error { return readyErr })
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d while ready", code)
	}
	readyErr = errors.New("database: connection refused")
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz = %d %q while the database is down", code, body)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- New().Serve(ctx, "127.0.0.1:0", func(context.Context) error { return nil }, zap.NewNop())
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// The watchdog rises by itself as days pass without a pull.
func TestPullWatchdogMetric(t *testing.T) {
	m := New()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	m.sincePull.now = func() time.Time { return now }
	m.Pull("600001", now.Add(-time.Hour))
	h := m.Handler(func(context.Context) error { return nil })
	for _, tc := range []struct {
		after time.Duration
		want  string
	}{
		{0, `iys_sync_pull_warning{brand_code="600001"} 0`},
		{6 * 24 * time.Hour, `iys_sync_pull_warning{brand_code="600001"} 1`},
		{8 * 24 * time.Hour, `iys_sync_pull_warning{brand_code="600001"} 2`},
	} {
		at := now.Add(tc.after)
		m.sincePull.now = func() time.Time { return at }
		if _, body := get(t, h, "/metrics"); !strings.Contains(body, tc.want) {
			t.Errorf("%s later: /metrics lacks %s\n%s", tc.after, tc.want, grep(body, "pull_warning"))
		}
	}
}
