package main

import (
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/status"
)

// freeAddr is a loopback address no one listens on (as far as one can tell).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func scrapeServe(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func lastReconcile(t *testing.T, now func() time.Time, environ map[string]string) *status.LastReconcile {
	t.Helper()
	r := runCmdAt(t, now, environ, "status", "--brand-code", "600001", "--json")
	var out status.Report
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Connectors) != 1 {
		t.Fatalf("status --json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return out.Connectors[0].LastReconcile
}

// syncedToday installs connector 600001 on a sandbox on clock, and syncs
// ONAYs of syncedP1 and syncedP2 today (Türkiye): what a day's reconciliation compares.
// It returns the sandbox's environment and today's start.
func syncedToday(t *testing.T, clock *reconcileClock) (environ map[string]string, today time.Time) {
	t.Helper()
	reconcileAwayFromMidnight(t)
	environ = sandboxEnv(t, sandbox.Options{Now: clock.Now, Seed: 5})
	today, _ = time.ParseInLocation("2006-01-02", time.Now().In(consent.Istanbul).Format("2006-01-02"), consent.Istanbul)
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	at := uploadTime(time.Now().Add(-10 * time.Minute))
	f := writeFile(t, "s.txt", strings.TrimPrefix(syncedP1, "+")+"; SMS; ONAY; "+at+"\n"+strings.TrimPrefix(syncedP2, "+")+"; SMS; ONAY; "+at+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCmd(t, environ, "--run-now", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	return environ, today
}

// The recipients of syncedToday, and one it leaves out.
const syncedP1, syncedP2, otherP3 = "+905330000001", "+905330000002", "+905330000003"

// TestServeReconcilesThePreviousDay: after the night's run, serve reconciles
// the previous Türkiye day by itself. In report mode the drift goes to the
// log (recipients masked), to status and to the metrics, and the record is
// left as it was; started again in repair mode, it reconciles the day again
// and repairs the record.
func TestServeReconcilesThePreviousDay(t *testing.T) {
	t.Parallel()
	clock := &reconcileClock{}
	environ, start := syncedToday(t, clock)
	day := start.Format("2006-01-02")
	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE connectors SET first_sync_at = now() - interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	// İYS overwrites syncedP2 behind our back, with no feed entry: no pull sees it.
	sandboxAdmin(t, environ).PutConsent(sandboxRecord(syncedP2, "RET", "HS_CAGRI_MERKEZI"))

	// Tomorrow 01:00; the schedule fired at 00:58. The runs so far started
	// before that tick (PostgreSQL's clock stays on today), so serve catches
	// up on the night at once, and each serve below runs it.
	clock.moveTo(start.AddDate(0, 0, 1).Add(time.Hour))
	environ["IYS_SCHEDULE"] = "58 0 * * *"
	environ["IYS_WINDOW"] = "1h"
	environ["IYS_METRICS_ADDR"] = freeAddr(t)

	logs, stop := startServeAt(t, clock.Now, environ)
	waitLog(t, logs, "nightly reconciliation done")
	metrics := scrapeServe(t, environ["IYS_METRICS_ADDR"])
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, logs.String())
	}
	out := logs.String()
	if !strings.Contains(out, `"drift"`) || !strings.Contains(out, consent.MaskRecipient(syncedP2)) || strings.Contains(out, syncedP2) ||
		strings.Contains(out, strings.TrimPrefix(syncedP2, "+")) {
		t.Fatalf("the drifting record is not logged, or not masked:\n%s", out)
	}
	for _, l := range []string{`iys_reconcile_drift{brand_code="600001",kind="status_differs"} 1`,
		`iys_reconcile_drift{brand_code="600001",kind="missing_here"} 0`,
		`iys_reconcile_unrepaired_records{brand_code="600001"} 1`,
		`iys_reconcile_failures_total{brand_code="600001"} 0`} {
		if !strings.Contains(metrics, l+"\n") {
			t.Errorf("/metrics lacks %s", l)
		}
	}
	if !strings.Contains(metrics, `iys_reconcile_last_timestamp_seconds{brand_code="600001"}`) {
		t.Error("/metrics lacks the last reconciliation's time")
	}
	r := lastReconcile(t, clock.Now, environ)
	if r == nil || r.Day != day || r.Mode != "report" || r.Trigger != "schedule" || r.Result != "done" ||
		r.Drift["status_differs"] != 1 || r.Drift["missing_here"] != 0 || r.Unrepaired != 1 || r.Repaired != 0 {
		t.Fatalf("status's lastReconcile: %+v", r)
	}
	if row := reconcileRecords(t, environ)[syncedP2]; row.Status != "ONAY" || row.State != "synced" {
		t.Fatalf("report mode changed the record: %+v", row)
	}
	if r := runCmdAt(t, clock.Now, environ, "status"); !strings.Contains(r.stdout,
		"600001: the reconciliation of "+day+" (report) left 1 drifting record and 0 summary mismatches") {
		t.Fatalf("status does not tell of the drift left:\n%s\n%s", r.stdout, r.stderr)
	}

	// In repair mode the day is reconciled again (report did not repair it),
	// and syncedP2 brought to İYS's state.
	environ["IYS_RECONCILE"] = "repair"
	logs, stop = startServeAt(t, clock.Now, environ)
	waitLog(t, logs, "nightly reconciliation done")
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, logs.String())
	}
	r = lastReconcile(t, clock.Now, environ)
	if r == nil || r.Day != day || r.Mode != "repair" || r.Result != "done" || r.Drift["status_differs"] != 1 ||
		r.Repaired != 1 || r.Unrepaired != 0 {
		t.Fatalf("status's lastReconcile after repair: %+v", r)
	}
	if row := reconcileRecords(t, environ)[syncedP2]; row.Status != "RET" || row.State != "synced" || row.Outcome != "from_iys" ||
		row.Source != "HS_CAGRI_MERKEZI" {
		t.Fatalf("repair mode left the record: %+v", row)
	}
	if row := reconcileRecords(t, environ)[syncedP1]; row.Status != "ONAY" || row.Outcome != "accepted" {
		t.Fatalf("syncedP1, in step, changed: %+v", row)
	}
}

func decodeReconcileRange(t *testing.T, r result) reconcileRangeJSON {
	t.Helper()
	var out reconcileRangeJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("reconcile --from --to --json printed no JSON: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return out
}

// TestReconcileRange: --from --to reconciles each day of the range, each
// day's drift its own, with the total; a range older than the 7 days İYS
// keeps is refused, naming the oldest day allowed.
func TestReconcileRange(t *testing.T) {
	t.Parallel()
	clock := &reconcileClock{}
	environ, start := syncedToday(t, clock)
	day := func(n int) string { return start.AddDate(0, 0, n).Format("2006-01-02") }
	// Day 1: syncedP1 opts out through İYS; day 2: otherP3, whom we hold nothing of,
	// opts in. Neither is pulled.
	admin := sandboxAdmin(t, environ)
	clock.moveTo(start.AddDate(0, 0, 1).Add(10 * time.Hour))
	admin.Citizen(sandboxRecord(syncedP1, "RET", "IYS_MOBIL"))
	clock.moveTo(start.AddDate(0, 0, 2).Add(10 * time.Hour))
	admin.Citizen(sandboxRecord(otherP3, "ONAY", "IYS_WEB"))
	clock.moveTo(start.AddDate(0, 0, 3).Add(time.Hour))

	r := runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--from", day(0), "--to", day(2), "--json")
	if r.code != exitRejected {
		t.Fatalf("reconcile --from --to: exit %d, want 3\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	out := decodeReconcileRange(t, r)
	if out.From != day(0) || out.To != day(2) || out.BrandCode != "600001" || len(out.Days) != 3 {
		t.Fatalf("range: %+v", out)
	}
	// Each day holds its own changes: ours on day 0, syncedP1's opt-out on day 1,
	// otherP3's opt-in on day 2. Day 0's syncedP1 is asked of İYS, whose newer RET
	// differs from ours.
	want := []struct {
		date     string
		fileRows int
		kinds    string
	}{{day(0), 2, "status_differs=1"}, {day(1), 1, "status_differs=1"}, {day(2), 1, "missing_here=1"}}
	for i, w := range want {
		d := out.Days[i]
		if d.Date != w.date || d.FileRows != w.fileRows || reconcileKinds(d) != w.kinds || d.BrandCode != "600001" {
			t.Errorf("day %d: %s, %d file rows, kinds %s; want %+v", i, d.Date, d.FileRows, reconcileKinds(d), w)
		}
	}
	tot := out.Total
	if tot.Days != 3 || tot.Drift != 3 || tot.Kinds["status_differs"] != 2 || tot.Kinds["missing_here"] != 1 ||
		tot.FileRows != 4 || strings.Join(tot.UncleanDays, ",") != day(0)+","+day(1)+","+day(2) {
		t.Fatalf("total: %+v", tot)
	}
	if r := lastReconcile(t, clock.Now, environ); r == nil || r.Day != day(2) || r.Trigger != "command" || r.Drift["missing_here"] != 1 {
		t.Fatalf("status's lastReconcile after the range: %+v", r)
	}

	// The text, each day and the total, and the CSV with the day first.
	csvPath := writeFile(t, "drift.csv", "")
	r = runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--from", day(1), "--to", day(2), "--csv", csvPath)
	if r.code != exitRejected || !strings.Contains(r.stdout, "reconcile 600001 for "+day(1)) ||
		!strings.Contains(r.stdout, "reconcile 600001 for "+day(2)) || !strings.Contains(r.stdout, "total of 2 days") ||
		strings.Contains(r.stdout, "for "+day(0)) {
		t.Fatalf("text: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "date,kind,drift,recipient,") ||
		!strings.HasPrefix(lines[1], day(1)+",status_differs,true,"+syncedP1) || !strings.HasPrefix(lines[2], day(2)+",missing_here,true,"+otherP3) {
		t.Fatalf("CSV:\n%s", b)
	}

	// İYS keeps 7 days: at day 3, the oldest is day -4.
	r = runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--from", day(-5), "--to", day(0))
	if r.code != exitUsage || !strings.Contains(r.stderr, "older than İYS keeps") || !strings.Contains(r.stderr, day(-4)) {
		t.Fatalf("a range past 7 days: exit %d\n%s", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"--from", day(2), "--to", day(3)},                   // day 3 is not over
		{"--from", day(2), "--to", day(1)},                   // backwards
		{"--from", day(1)},                                   // no --to
		{"--date", day(1), "--from", day(1), "--to", day(2)}, // both forms
	} {
		r = runCmdAt(t, clock.Now, environ, append([]string{"reconcile", "--brand-code", "600001"}, args...)...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}
