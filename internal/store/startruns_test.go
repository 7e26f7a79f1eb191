package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// StartRuns starts a run per connector in one statement, closes the runs a
// dead process left running (naming the new run, as StartRun does), and
// tells which connectors have batches to recover; Backlogs answers as
// Backlog does for each; FinishRuns finishes the runs still running and
// names the others.
func TestStartRunsBacklogsFinishRuns(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b, c := install(t, s, "A"), install(t, s, "B"), install(t, s, "C")
	importRows(t, s, a.ID, phones(t, 4)...)
	dead := startRun(t, s, a.ID) // a process that died: its run and a batch left
	claim(t, s, a.ID, dead, 2)
	oldB := startRun(t, s, b.ID)
	if err := s.FinishRun(ctx, oldB, consent.RunCompleted, ""); err != nil {
		t.Fatal(err)
	}

	started, err := s.StartRuns(ctx, []int64{a.ID, b.ID, c.ID}, consent.TriggerSchedule)
	if err != nil {
		t.Fatal(err)
	}
	by := map[int64]consent.StartedRun{}
	for _, r := range started {
		by[r.ConnectorID] = r
	}
	if len(started) != 3 || len(by) != 3 || !by[a.ID].Recover || by[b.ID].Recover || by[c.ID].Recover {
		t.Fatalf("started = %+v, want one run each, only A to recover", started)
	}
	var status, errText string
	if err := s.db.QueryRow(`SELECT status, error FROM runs WHERE id = $1`, dead).Scan(&status, &errText); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("killed (closed by run %d)", by[a.ID].RunID); status != "failed" || errText != want {
		t.Fatalf("the dead run: %s %q, want failed %q", status, errText, want)
	}
	if n := count(t, s, `SELECT count(*) FROM runs WHERE status = 'running'`); n != 3 {
		t.Fatalf("%d runs running, want the 3 new ones", n)
	}
	if n := count(t, s, `SELECT count(*) FROM runs WHERE id = $1 AND status = 'completed'`, oldB); n != 1 {
		t.Fatal("a finished run was touched")
	}

	now := time.Now()
	bls, err := s.Backlogs(ctx, []int64{a.ID, b.ID, c.ID}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{a.ID, b.ID, c.ID} {
		one, err := s.Backlog(ctx, id, now)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := bls[id]
		if !ok || got.Pending != one.Pending || got.InFlight != one.InFlight || (one.Pending > 0 && (got.NextDueIn-one.NextDueIn).Abs() > time.Second) {
			t.Fatalf("connector %d: Backlogs %+v, Backlog %+v", id, got, one)
		}
	}
	if bls[a.ID].Pending != 2 || bls[a.ID].InFlight != 2 {
		t.Fatalf("A: %+v, want 2 pending and 2 in flight", bls[a.ID])
	}

	// C's run was closed meanwhile (by a later run: its lock was lost).
	execSQL(t, s, `UPDATE runs SET status = 'failed', finished_at = now() WHERE id = $1`, by[c.ID].RunID)
	notRunning, err := s.FinishRuns(ctx, []consent.RunEnd{{RunID: by[a.ID].RunID, Status: consent.RunPartial, Err: "2 left"},
		{RunID: by[b.ID].RunID, Status: consent.RunCompleted}, {RunID: by[c.ID].RunID, Status: consent.RunCompleted}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(notRunning, []int64{by[c.ID].RunID}) {
		t.Fatalf("not running: %v, want C's run", notRunning)
	}
	for id, want := range map[int64]string{by[a.ID].RunID: "partial 2 left", by[b.ID].RunID: "completed ", by[c.ID].RunID: "failed "} {
		var st, e string
		if err := s.db.QueryRow(`SELECT status, coalesce(error, '') FROM runs WHERE id = $1 AND finished_at IS NOT NULL`, id).Scan(&st, &e); err != nil {
			t.Fatal(err)
		}
		if st+" "+e != want {
			t.Fatalf("run %d: %s %q, want %s", id, st, e, want)
		}
	}
	if _, err := s.FinishRuns(ctx, []consent.RunEnd{{RunID: by[a.ID].RunID, Status: "running"}}); err == nil {
		t.Fatal("FinishRuns took a status that is not an end")
	}
}
