package main

import (
	"context"
	"database/sql"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/metrics/metricstest"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// A --run-now with IYS_PUSHGATEWAY_URL pushes its run's metrics to the
// Pushgateway as it ends, grouped by job and instance; a failed run pushes
// its failure and keeps the last success's time; a push that fails changes
// nothing of the exit status; a pull merges its metrics into its group.
func TestRunNowPushesItsMetrics(t *testing.T) {
	environ := sandboxEnv(t, sandbox.Options{FeedEntry: func(_, _ string, m map[string]any) {
		if m["recipient"] == "+905330000002" {
			delete(m, "recipientType") // unreadable: quarantined
		}
	}})
	g := metricstest.NewGateway(t)
	environ["IYS_PUSHGATEWAY_URL"] = g.URL
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	at := uploadTime(time.Now().Add(-time.Hour))
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+at+"\n905331234563; SMS; RET; "+at+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, p := range []string{"+905330000001", "+905330000002"} {
		sandboxAdmin(t, environ).Citizen(sandboxRecord(p, "RET", "IYS_WEB"))
	}

	if r := runCmd(t, environ, "--run-now", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	pushes := g.Pushes()
	if len(pushes) != 1 {
		t.Fatalf("%d pushes, want 1", len(pushes))
	}
	first := pushes[0]
	wantPush(t, first, http.MethodPut, "/metrics/job/iys-sync/instance/600001",
		`iys_sync_runs_total{brand_code="600001",status="completed"} 1`,
		`iys_sync_last_run_status{brand_code="600001",status="completed"} 1`,
		`iys_sync_last_run_status{brand_code="600001",status="failed"} 0`,
		`iys_sync_records_total{brand_code="600001",outcome="accepted"} 1`,
		`iys_sync_records_total{brand_code="600001",outcome="no_prior_record"} 1`,
		`iys_sync_pending_records{brand_code="600001"} 0`,
		`iys_sync_last_run_failed_records{brand_code="600001"} 0`,
		`iys_pull_quarantined_total{brand_code="600001"} 1`,
		`iys_sync_deadline_at_risk_records{brand_code="600001"} 0`,
		`iys_sync_deadline_too_old_records{brand_code="600001"} 0`,
		`iys_requests_total{endpoint="submit_bulk",result="ok"} 1`,
		`iys_requests_total{endpoint="changes",result="ok"}`, // no token request: the run takes the token install stored
		`iys_request_duration_seconds_count{endpoint="submit_bulk"} 1`,
		`iys_sync_last_success_timestamp_seconds{brand_code="600001"}`,
		`iys_sync_last_pull_timestamp_seconds{brand_code="600001"}`)
	// The last success is the run's end as stored, not the installation.
	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var finished float64
	if err := db.QueryRow(`SELECT extract(epoch FROM finished_at) FROM runs WHERE status = 'completed'`).Scan(&finished); err != nil {
		t.Fatal(err)
	}
	if ts, err := strconv.ParseFloat(sample(first, "iys_sync_last_success_timestamp_seconds"), 64); err != nil || math.Abs(ts-finished) > 0.002 {
		t.Errorf("last success %v (%v), want the completed run's end %v", ts, err, finished)
	}
	for name := range first.Families {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.Contains(name, "seconds_since") {
			t.Errorf("pushed %s, which means nothing once the process is gone", name)
		}
	}

	// İYS takes the brand's rights away: the next run, over every
	// connector, fails; its push says so and keeps the last success's time.
	deny(t, environ, true)
	f2 := writeFile(t, "s2.txt", "905331234564; SMS; ONAY; "+at+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f2); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCmd(t, environ, "--run-now"); r.code != exitRejected {
		t.Fatalf("--run-now of a denied brand: exit %d\n%s", r.code, r.stderr)
	}
	pushes = g.Pushes()
	if len(pushes) != 2 {
		t.Fatalf("%d pushes, want 2", len(pushes))
	}
	wantPush(t, pushes[1], http.MethodPut, "/metrics/job/iys-sync/instance/all",
		`iys_sync_last_run_status{brand_code="600001",status="failed"} 1`,
		`iys_sync_runs_total{brand_code="600001",status="failed"} 1`,
		`iys_sync_pending_records{brand_code="600001"} 1`,
		`iys_requests_total{endpoint="submit_bulk",result="auth"}`,
		`iys_sync_request_failures_total{brand_code="600001",call="submit"`)
	if a, b := sample(first, "iys_sync_last_success_timestamp_seconds"), sample(pushes[1], "iys_sync_last_success_timestamp_seconds"); a == "" || a != b {
		t.Errorf("last success after a failed run: %q, want the completed run's %q", b, a)
	}

	// A Pushgateway that refuses the push: logged, the exit status stands.
	deny(t, environ, false)
	g.Answer(http.StatusInternalServerError)
	r := runCmd(t, environ, "--run-now", "--brand-code", "600001")
	if r.code != 0 || !strings.Contains(r.stderr, "metrics not pushed") {
		t.Fatalf("--run-now with a failing Pushgateway: exit %d\n%s", r.code, r.stderr)
	}

	// A pull merges its requests and its end into the connector's group.
	g.Answer(http.StatusOK)
	if r := runCmd(t, environ, "pull", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("pull: exit %d\n%s", r.code, r.stderr)
	}
	pushes = g.Pushes()
	pull := pushes[len(pushes)-1]
	wantPush(t, pull, http.MethodPost, "/metrics/job/iys-sync/instance/600001",
		`iys_requests_total{endpoint="changes",result="ok"}`,
		`iys_sync_last_pull_timestamp_seconds{brand_code="600001"}`)
	if _, ok := pull.Families["iys_sync_last_run_status"]; ok {
		t.Error("a pull pushed a run's status, which would replace the run's own")
	}
}

// wantPush checks a push's method, grouping path and samples.
func wantPush(t *testing.T, p metricstest.Push, method, path string, samples ...string) {
	t.Helper()
	if p.Method != method || p.Path != path {
		t.Errorf("push %s %s, want %s %s", p.Method, p.Path, method, path)
	}
	var all strings.Builder
	for _, text := range p.Families {
		all.WriteString(text)
	}
	for _, s := range samples {
		if !strings.Contains(all.String(), s) {
			t.Errorf("push to %s lacks %s", p.Path, s)
		}
	}
	if t.Failed() {
		t.Logf("pushed:\n%s", all.String())
	}
}

// sample is the value of a family's one sample, as pushed.
func sample(p metricstest.Push, family string) string {
	for _, l := range strings.Split(p.Families[family], "\n") {
		if strings.HasPrefix(l, family) {
			return l[strings.LastIndex(l, " ")+1:]
		}
	}
	return ""
}

// deny takes the brand's rights away at the sandbox, or gives them back.
func deny(t *testing.T, environ map[string]string, denied bool) {
	t.Helper()
	if err := sandboxPost(context.Background(), environ["IYS_API_URL"]+"/_sandbox/deny",
		map[string]any{"brandCode": "600001", "denied": denied}); err != nil {
		t.Fatal(err)
	}
}
