package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/reconcile"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

// reconcileClock is the real time plus an offset the test moves: the sandbox
// and the commands run on it, while PostgreSQL's now() (synced_at) stays
// on the real time. So the test reconciles the real Türkiye today, once the
// clock is moved into tomorrow.
type reconcileClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *reconcileClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// moveTo sets the clock to t (it goes on from there).
func (c *reconcileClock) moveTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = time.Until(t)
}

// reconcileAwayFromMidnight waits out the last minutes of a Türkiye day, so that
// everything the test records falls in one day.
func reconcileAwayFromMidnight(t *testing.T) {
	now := time.Now().In(consent.Istanbul)
	y, m, d := now.Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, consent.Istanbul)
	if left := midnight.Sub(now); left < 2*time.Minute {
		t.Logf("waiting %s for Türkiye's midnight to pass", left.Round(time.Second))
		time.Sleep(left + time.Second)
	}
}

// sandboxRecord names the MESAJ record of a recipient of brand 600001 at
// the sandbox, with the status and source to set ("" for none).
func sandboxRecord(recipient, status, source string) sandboxtest.Change {
	return sandboxtest.Change{IYSCode: "700001", BrandCode: "600001", Recipient: recipient, RecipientType: "BIREYSEL",
		Type: "MESAJ", Status: status, Source: source}
}

// sandboxAdmin is a client of the admin endpoints of environ's sandbox.
func sandboxAdmin(t *testing.T, environ map[string]string) *sandboxtest.Admin {
	return sandboxtest.NewAdmin(t, environ["IYS_API_URL"])
}

func decodeReconcile(t *testing.T, r result) reconcileJSON {
	t.Helper()
	var out reconcileJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("reconcile --json printed no JSON: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return out
}

// reconcileKinds is a reconcile --json's counts, the zero ones left out.
func reconcileKinds(out reconcileJSON) string {
	var parts []string
	for k, n := range out.Kinds {
		if n != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func reconcileRecords(t *testing.T, environ map[string]string) map[string]reportRow {
	t.Helper()
	r := runCmd(t, environ, "report", "--brand-code", "600001", "--format", "json")
	var rows []reportRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("report: %v %s %s", err, r.stdout, r.stderr)
	}
	out := map[string]reportRow{}
	for _, row := range rows {
		out[row.Recipient] = row
	}
	return out
}

func TestReconcileFindsRepairsDrift(t *testing.T) {
	t.Parallel()
	reconcileAwayFromMidnight(t)
	clock := &reconcileClock{}
	environ := sandboxEnv(t, sandbox.Options{Now: clock.Now, Seed: 5})
	day := time.Now().In(consent.Istanbul).Format("2006-01-02")
	p := func(i int) string { return fmt.Sprintf("+90533000000%d", i) }
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// Six ONAYs, synced today: p1..p5 and p7.
	at := uploadTime(time.Now().Add(-10 * time.Minute))
	var lines []string
	for _, i := range []int{1, 2, 3, 4, 5, 7} {
		lines = append(lines, strings.TrimPrefix(p(i), "+")+"; SMS; ONAY; "+at)
	}
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms",
		writeFile(t, "s.txt", strings.Join(lines, "\n")+"\n")); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCmd(t, environ, "--run-now", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// p5's citizen opt-out is pulled: not drift.
	admin := sandboxAdmin(t, environ)
	admin.Citizen(sandboxRecord(p(5), "RET", "IYS_MOBIL"))
	if r := runCmd(t, environ, "pull", "--brand-code", "600001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// Behind our back: p1 opts out through İYS (not pulled), p6 opts in
	// (a recipient we hold nothing of), İYS overwrites p2 silently and
	// forgets p3. p4 is left alone. Ours for p7 moves on: a newer RET, unsent.
	admin.Citizen(sandboxRecord(p(1), "RET", "IYS_MOBIL"))
	admin.Citizen(sandboxRecord(p(6), "ONAY", "IYS_WEB"))
	admin.PutConsent(sandboxRecord(p(2), "RET", "HS_CAGRI_MERKEZI"))
	admin.DeleteConsent(sandboxRecord(p(3), "", ""))
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms",
		writeFile(t, "s2.txt", strings.TrimPrefix(p(7), "+")+"; SMS; RET; "+uploadTime(time.Now().Add(-time.Minute))+"\n")); r.code != 0 {
		t.Fatal(r.stderr)
	}

	// Today is not over: no file yet.
	if r := runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--date", day); r.code != exitUsage ||
		!strings.Contains(r.stderr, "not over") {
		t.Fatalf("reconcile of today: exit %d, %s", r.code, r.stderr)
	}
	start, _ := time.ParseInLocation("2006-01-02", day, consent.Istanbul)
	clock.moveTo(start.AddDate(0, 0, 1).Add(time.Hour)) // tomorrow, 01:00

	csvPath := filepath.Join(t.TempDir(), "drift.csv")
	r := runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--date", day, "--json", "--csv", csvPath)
	if r.code != exitRejected {
		t.Fatalf("reconcile: exit %d, want 3\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	out := decodeReconcile(t, r)
	if !strings.Contains(r.stdout, `"summaryMismatch": []`) || !strings.Contains(r.stdout, `"ours_newer_rejected": 0`) {
		t.Errorf("--json: no empty list of summary mismatches, or a kind left out: %s", r.stdout)
	}
	if got := reconcileKinds(out); got != "missing_here=1 only_here_synced=1 ours_newer_unsent=1 status_differs=2" ||
		out.Drift != 4 || len(out.SummaryMismatch) != 0 || out.Repaired != 0 || out.Date != day || out.BrandCode != "600001" ||
		out.FileRows != 9 || out.Records != 7 || out.LookedUp != 2 {
		t.Fatalf("reconcile --json: kinds %s, %+v", got, out)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 6 || !slices.Equal(rows[0], reconcile.CSVHeader) {
		t.Fatalf("CSV: %v\n%v", err, rows)
	}
	col := func(row []string, name string) string { return row[slices.Index(reconcile.CSVHeader, name)] }
	got := map[string]string{}
	for _, row := range rows[1:] {
		got[col(row, "recipient")] = strings.Join([]string{col(row, "kind"), col(row, "drift"), col(row, "ourStatus"),
			col(row, "ourState"), col(row, "iysStatus"), col(row, "iysSource"), col(row, "lookedUp")}, " ")
	}
	want := map[string]string{
		p(6): "missing_here true   ONAY IYS_WEB false",
		p(1): "status_differs true ONAY synced RET IYS_MOBIL false",
		p(2): "status_differs true ONAY synced RET HS_CAGRI_MERKEZI true",
		p(3): "only_here_synced true ONAY synced   true",
		p(7): "ours_newer_unsent false RET pending ONAY HS_MESAJ false",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// The text report, with the CSV on stdout.
	r = runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--date", day, "--csv", "-")
	if r.code != exitRejected || strings.Count(r.stdout, "\n") != 6 || !strings.Contains(r.stderr, "drift: 4 records") ||
		!strings.Contains(r.stderr, "daily summary: agrees") {
		t.Fatalf("reconcile --csv -: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	r = runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--date", day, "--repair", "--json")
	if out := decodeReconcile(t, r); r.code != 0 || out.Repaired != 4 || out.Unrepaired != 0 || out.Drift != 4 {
		t.Fatalf("reconcile --repair: exit %d, %+v\n%s", r.code, out, r.stderr)
	}
	recs := reconcileRecords(t, environ)
	for rc, w := range map[string]string{
		p(1): "RET synced from_iys IYS_MOBIL", p(2): "RET synced from_iys HS_CAGRI_MERKEZI", p(3): "ONAY pending  HS_MESAJ",
		p(4): "ONAY synced accepted HS_MESAJ", p(6): "ONAY synced from_iys IYS_WEB", p(7): "RET pending  HS_MESAJ",
	} {
		row := recs[rc]
		if g := strings.Join([]string{row.Status, row.State, row.Outcome, row.Source}, " "); g != w {
			t.Errorf("after repair %s: %q, want %q", rc, g, w)
		}
	}
	r = runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--date", day, "--json")
	if out := decodeReconcile(t, r); r.code != 0 || reconcileKinds(out) != "ours_newer_unsent=1" || out.Drift != 0 || len(out.SummaryMismatch) != 0 {
		t.Fatalf("after repair: exit %d, %+v\n%s", r.code, out, r.stderr)
	}

	// The next run sends p3 again and p7's RET: nothing is left to report.
	if r := runCmdAt(t, clock.Now, environ, "--run-now", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runCmdAt(t, clock.Now, environ, "reconcile", "--brand-code", "600001", "--date", day, "--json")
	if out := decodeReconcile(t, r); r.code != 0 || reconcileKinds(out) != "" || len(out.SummaryMismatch) != 0 || out.LookedUp != 1 {
		t.Fatalf("after the next run: exit %d, %+v\n%s", r.code, out, r.stderr)
	}
}

func TestReconcileUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"reconcile", "--date", "2025-06-10"},                                                   // no brand
		{"reconcile", "--brand-code", "600001"},                                                 // no date
		{"reconcile", "--brand-code", "600001", "--date", "10.06.2025"},                         // bad date
		{"reconcile", "--brand-code", "600001", "--date", "2999-01-01"},                         // not over
		{"reconcile", "--brand-code", "600001", "--date", "2025-06-10", "--json", "--csv", "-"}, // both on stdout
		{"reconcile", "--brand-code", "600001", "--date", "2025-06-10", "extra"},                // operand
	} {
		if r := runCmd(t, nil, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want 2; %s", args, r.code, r.stderr)
		}
	}
	if r := runCmd(t, nil, "reconcile", "--brand-code", "600001", "--date", "2025-06-10"); r.code != exitFatal ||
		!strings.Contains(r.stderr, "IYS_DATABASE_URL") {
		t.Errorf("no database: exit %d, %s", r.code, r.stderr)
	}
}
