package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestRunsStartCloseDeadOnesAndFinish(t *testing.T) {
	s, _ := newStore(t)
	a, b := install(t, s, "A"), install(t, s, "B")
	ctx := context.Background()
	if _, ok, err := s.LastRun(ctx, a.ID); err != nil || ok {
		t.Fatalf("LastRun of a connector that never ran: ok=%v err=%v", ok, err)
	}
	dead := startRun(t, s, a.ID)  // its process died
	other := startRun(t, s, b.ID) // another connector's: left alone
	next := startRun(t, s, a.ID)

	old, err := s.RunByID(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	if old.Status != consent.RunFailed || !old.FinishedAt.Valid || old.Error.String != fmt.Sprintf("killed (closed by run %d)", next) {
		t.Fatalf("dead run = %+v, want failed: killed (closed by run %d)", old, next)
	}
	if r, _ := s.RunByID(ctx, other); r.Status != consent.RunRunning {
		t.Fatalf("the other connector's run = %s, want running", r.Status)
	}
	if err := s.FinishRun(ctx, next, consent.RunPartial, "window ended"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, next, consent.RunCompleted, ""); err == nil {
		t.Fatal("a finished run was finished again")
	}
	if err := s.FinishRun(ctx, other, consent.RunRunning, ""); err == nil {
		t.Fatal("a run was finished as running")
	}
	last, ok, err := s.LastRun(ctx, a.ID)
	if err != nil || !ok {
		t.Fatalf("LastRun: ok=%v err=%v", ok, err)
	}
	if last.ID != next || last.Status != consent.RunPartial || last.Error.String != "window ended" ||
		last.Trigger != consent.TriggerRunNow || !last.FinishedAt.Valid {
		t.Fatalf("last run = %+v", last)
	}
	startRun(t, s, a.ID) // running now
	fin, ok, err := s.LastFinishedRun(ctx, a.ID)
	if err != nil || !ok || fin.ID != next {
		t.Fatalf("LastFinishedRun = %+v, %v, %v; want run %d", fin, ok, err, next)
	}
	if _, ok, _ := s.LastFinishedRun(ctx, b.ID); ok {
		t.Fatal("a connector whose only run is running has a finished run")
	}
	if _, err := s.StartRun(ctx, a.ID, "cron"); err == nil {
		t.Fatal("an unknown trigger was accepted")
	}
}

func TestSyncConnectors(t *testing.T) {
	s, _ := newStore(t)
	install(t, s, "B")
	install(t, s, "A")
	execSQL(t, s, `UPDATE connectors SET state = 'paused' WHERE brand_code = 'B'`)
	ctx := context.Background()
	all, err := s.SyncConnectors(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].BrandCode != "A" || !all[0].Active || all[1].BrandCode != "B" || all[1].Active ||
		all[0].IYSCode != "IYS-A" {
		t.Fatalf("connectors = %+v", all)
	}
	one, err := s.SyncConnectors(ctx, []string{"B"})
	if err != nil || len(one) != 1 || one[0].BrandCode != "B" {
		t.Fatalf("named: %+v, %v", one, err)
	}
	if _, err := s.SyncConnectors(ctx, []string{"A", "NOPE"}); !errors.Is(err, ErrNoConnector) {
		t.Fatalf("an unknown brand: %v, want ErrNoConnector", err)
	}
}

// UnfinishedNights lists the active connectors whose night has no
// completed or partial run since its tick, saying why, and no other.
func TestUnfinishedNights(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tick := time.Now().Add(-time.Hour).Truncate(time.Second)
	ids := map[string]int64{}
	for _, b := range []string{"COMPLETED", "FAILED", "NORUN", "PAUSED", "LATER", "RERUN", "RUNNING", "PARTIAL"} {
		ids[b] = install(t, s, b).ID
	}
	execSQL(t, s, `UPDATE connectors SET state = 'paused' WHERE brand_code = 'PAUSED'`)
	execSQL(t, s, `UPDATE connectors SET first_sync_at = $1 WHERE brand_code = 'LATER'`, tick.Add(24*time.Hour))
	run := func(brand string, startedAgo time.Duration, status, errText string) {
		t.Helper()
		execSQL(t, s, `INSERT INTO runs (connector_id, trigger, started_at, status, finished_at, error)
			VALUES ($1, 'schedule', $2, $3, CASE WHEN $3 = 'running' THEN NULL ELSE now() END, NULLIF($4, ''))`,
			ids[brand], time.Now().Add(-startedAgo), status, errText)
	}
	// Before the tick: yesterday's nights, whatever they were, do not count.
	for b := range ids {
		run(b, 25*time.Hour, "completed", "")
	}
	run("COMPLETED", 50*time.Minute, "completed", "")
	run("FAILED", 50*time.Minute, "failed", "lock lost")
	run("FAILED", 40*time.Minute, "failed", "database down")
	// The night completed; a later run that failed does not undo that.
	run("RERUN", 50*time.Minute, "completed", "")
	run("RERUN", 10*time.Minute, "failed", "refused")
	run("RUNNING", 30*time.Minute, "running", "")
	run("PARTIAL", 30*time.Minute, "partial", "window ended")
	run("PAUSED", 30*time.Minute, "failed", "x")
	run("LATER", 30*time.Minute, "failed", "x")

	got, err := s.UnfinishedNights(ctx, tick)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"FAILED": "failed: database down", "NORUN": "no run since the schedule fired",
		"RUNNING": "is still marked running"}
	if len(got) != len(want) {
		t.Fatalf("unfinished = %v, want %v", got, want)
	}
	for b, why := range want {
		if !strings.Contains(got[b], why) {
			t.Errorf("%s: %q, want it to say %q", b, got[b], why)
		}
	}

	// A connector whose lock a session holds is being run (by this
	// replica or another): not listed while held, listed once freed.
	_, locked, release, err := s.LockConnectors(ctx, []int64{ids["RUNNING"], ids["NORUN"]})
	if err != nil || len(locked) != 2 {
		t.Fatalf("lock: %v %v", locked, err)
	}
	if got, err = s.UnfinishedNights(ctx, tick); err != nil || len(got) != 1 || got["FAILED"] == "" {
		t.Fatalf("unfinished with RUNNING and NORUN locked = %v (%v), want FAILED only", got, err)
	}
	release()
	if got, err = s.UnfinishedNights(ctx, tick); err != nil || len(got) != 3 {
		t.Fatalf("unfinished after release = %v (%v), want all three again", got, err)
	}
}
