package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// The pull against `iys-sync sandbox --page-cap 100`: 1,200 citizens'
// changes come back whole; a refused cursor says how to get out and keeps
// the watchdog where it was; --reset-cursor gets out.
func TestPullFollowsThePageCappedFeedAndResetsARefusedCursor(t *testing.T) {
	t.Parallel()
	url := startSandboxCmd(t, "--page-cap", "100", "--brand", "700001:600001:Demo", "--seed", "9")
	environ := map[string]string{"IYS_DATABASE_URL": storedb.NewDB(t), "IYS_API_URL": url,
		"IYS_USERNAME": sandbox.DefaultUsername, "IYS_PASSWORD": sandbox.DefaultPassword}
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	const n = 1200
	admin := sandboxAdmin(t, environ)
	for i := range n {
		admin.Citizen(sandboxRecord(fmt.Sprintf("+90533%07d", i), "RET", "IYS_MOBIL"))
	}
	r := runCmd(t, environ, "pull", "--brand-code", "600001")
	if want := fmt.Sprintf("%d changes read in 14 pages, %d applied", n, n); r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("pull: exit %d, %q %s; want %q", r.code, r.stdout, r.stderr, want)
	}
	now := time.Now()
	if p := statusAt(t, now, environ).Pull; p.LastPulledAt == "" || p.Applied != n || p.Quarantined != 0 || p.Warning != "" {
		t.Fatalf("status after the pull: %+v", p)
	}

	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The last pull to the feed's end was 6 days ago, and İYS has since
	// forgotten the cursor stored.
	if _, err := db.Exec(`UPDATE pull_cursors SET complete_at = now() - interval '6 days', after = '1604423100000_00'`); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, environ, "pull", "--brand-code", "600001")
	if r.code != exitFatal || !strings.Contains(r.stderr, "refused the stored changes-feed cursor") ||
		!strings.Contains(r.stderr, "iys-sync pull --brand-code 600001 --reset-cursor") {
		t.Fatalf("pull with a refused cursor: exit %d, %s", r.code, r.stderr)
	}
	if p := statusAt(t, now, environ).Pull; !strings.Contains(p.Warning, "over 5 days") {
		t.Fatalf("status after a failed pull: %+v, want the watchdog's warning", p)
	}
	r = runCmd(t, environ, "pull", "--brand-code", "600001", "--reset-cursor")
	if want := fmt.Sprintf("%d changes read in 14 pages, 0 applied", n); r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("pull --reset-cursor: exit %d, %q %s; want %q", r.code, r.stdout, r.stderr, want)
	}
	if p := statusAt(t, now, environ).Pull; p.Warning != "" || p.LagSeconds > 60 {
		t.Fatalf("status after the reset pull: %+v", p)
	}
}

// An entry the pull cannot read is kept in quarantine and shown by pull and
// status; the rest is applied.
func TestPullShowsQuarantinedChanges(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{FeedEntry: func(_, _ string, m map[string]any) {
		if m["recipient"] == "+905330000002" {
			delete(m, "recipientType")
		}
	}})
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, p := range []string{"+905330000001", "+905330000002"} {
		sandboxAdmin(t, environ).Citizen(sandboxRecord(p, "RET", "IYS_WEB"))
	}
	r := runCmd(t, environ, "pull", "--brand-code", "600001")
	if r.code != 0 || !strings.Contains(r.stdout, "2 changes read in 3 pages, 1 applied") ||
		!strings.Contains(r.stdout, "1 unreadable kept in quarantine") {
		t.Fatalf("pull: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "recipientType: missing") || strings.Contains(r.stderr, "5330000002") {
		t.Fatalf("the log names the reason, never the recipient:\n%s", r.stderr)
	}
	if p := statusAt(t, time.Now(), environ).Pull; p.Quarantined != 1 || p.LastPulledAt == "" {
		t.Fatalf("status --json pull %+v", p)
	}
	if r := runCmd(t, environ, "status"); !strings.Contains(r.stdout, "600001: 1 change from İYS's feed could not be read") {
		t.Fatalf("status:\n%s", r.stdout)
	}
}
