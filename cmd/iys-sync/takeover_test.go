package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// TestReplicaTakesOverADeadOnesBrand: two `serve` replicas, both started
// after the night's tick. The first runs the brand; the second finds it
// held and leaves it. The first is killed mid-run: the second takes the
// brand over within the same window, polls the requests the dead one had
// sent (never sending them again), and finishes it.
func TestReplicaTakesOverADeadOnesBrand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two serve processes")
	}
	w := newKSWorld(t, sandbox.Options{Latency: 30 * time.Millisecond, AsyncDelay: 200 * time.Millisecond})
	const lines = 10_000
	want := w.importLines(t, "B1", 0, lines, 5)
	if _, err := w.db.Exec(`UPDATE connectors SET first_sync_at = now() - interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	tick := time.Now().In(consent.Istanbul).Add(-2 * time.Minute)
	environ := []string{fmt.Sprintf("IYS_SCHEDULE=%d %d * * *", tick.Minute(), tick.Hour()),
		"IYS_TIMEZONE=Europe/Istanbul", "IYS_WINDOW=1h", "IYS_TAKEOVER_EVERY=1s",
		"IYS_RATE_LIMIT=1"} // 20 requests take 20 s: A is killed well before its end

	a := w.start(t, "A", []string{"serve"}, environ)
	run := w.newRun(t, a, 0)
	w.waitFor(t, a, "its first bulk requests", `SELECT count(*) >= 3 FROM batches WHERE run_id = $1 AND state IN ('submitted', 'done')`, run)
	b := w.start(t, "B", []string{"serve"}, environ)
	time.Sleep(2500 * time.Millisecond) // B's catch-up at start and two looks, with A alive
	if n := w.count(t, `SELECT count(*) FROM runs`); n != 1 {
		t.Fatalf("%d runs while A ran the brand, want 1: B must leave a held brand alone", n)
	}
	w.kill(t, a)
	t.Logf("killed A: %s", w.progress(t))

	w.waitFor(t, b, "B to take the brand over and complete it",
		`SELECT EXISTS (SELECT FROM runs WHERE id > $1 AND status = 'completed')`, run)
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := b.wait(t, time.Minute); code != 0 {
		t.Fatalf("B exited %d; stderr:\n%s", code, tailOf(b.stderr.String(), 4000))
	}
	t.Logf("B finished: %s", w.progress(t))

	w.checkSynced(t, "B1", want, true)
	w.checkSentOnce(t)
	if n := w.count(t, `SELECT count(*) FROM consents WHERE state IN ('pending', 'in_flight', 'failed')`); n != 0 {
		t.Fatalf("%d records pending, in flight or failed, want none", n)
	}
	var status, errText string
	if err := w.db.QueryRow(`SELECT status, coalesce(error, '') FROM runs WHERE id = $1`, run).Scan(&status, &errText); err != nil {
		t.Fatal(err)
	}
	if status != string(consent.RunFailed) || errText == "" {
		t.Fatalf("A's run: %s %q, want it closed as failed by B's", status, errText)
	}
	if n := w.count(t, `SELECT count(*) FROM runs`); n != 2 {
		t.Fatalf("%d runs, want A's and B's", n)
	}
	// Of the brand's requests, only those A sent without saving the
	// requestId may have gone twice.
	var unsaved int
	if err := w.db.QueryRow(`SELECT coalesce(sum(size), 0) FROM batches WHERE request_id IS NULL AND state = 'released'`).Scan(&unsaved); err != nil {
		t.Fatal(err)
	}
	if items := w.sb.Admin.Stats().Processed(); items < 2*lines || items > int64(2*lines+unsaved) {
		t.Fatalf("İYS processed %d consents for %d records; only the %d of unsaved batches may go twice", items, 2*lines, unsaved)
	}
}
