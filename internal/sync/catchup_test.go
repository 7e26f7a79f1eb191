package sync_test

import (
	"context"
	"fmt"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// catchUpWorld is a scheduler over the real engine and store, as serve
// wires it, whose schedule fired a few minutes ago and whose window is
// still open: what a process restarted after the tick finds.
type catchUpWorld struct {
	e    *env
	eng  *engine.Engine
	spec string
	// afterJob, when set, is called after each run.
	afterJob func()

	mu   gosync.Mutex
	jobs [][]string // the connectors of each run
	// settled: Unfinished said nothing is left, so the scheduler is done
	// with the night.
	settled bool
}

func newCatchUpWorld(t *testing.T, sbOpts sandbox.Options) *catchUpWorld {
	e := newEnv(t, sbOpts)
	tick := time.Now().UTC().Add(-3 * time.Minute)
	return &catchUpWorld{e: e, eng: e.engine(e.fastOptions(), nil), spec: fmt.Sprintf("%d %d * * *", tick.Minute(), tick.Hour())}
}

// serve starts a scheduler (a process starting), waits until it has
// looked at the night and is done with it, and stops it.
func (w *catchUpWorld) serve(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	w.settled = false
	w.mu.Unlock()
	job := func(ctx context.Context, n engine.Night, brands []string) {
		w.mu.Lock()
		w.jobs = append(w.jobs, brands)
		w.mu.Unlock()
		if _, err := w.eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerSchedule, BrandCodes: brands, Deadline: n.Deadline}); err != nil {
			t.Errorf("run: %v", err)
		}
		if w.afterJob != nil {
			w.afterJob()
		}
	}
	unfinished := func(ctx context.Context, tick time.Time) (map[string]string, error) {
		left, err := w.e.st.UnfinishedNights(ctx, tick)
		w.mu.Lock()
		w.settled = err == nil && len(left) == 0
		w.mu.Unlock()
		return left, err
	}
	s, err := engine.NewScheduler(engine.SchedulerOptions{Spec: w.spec, Location: time.UTC, Window: time.Hour, Job: job,
		Unfinished: unfinished, Logger: w.e.log, CatchUpPause: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	// Done: it found nothing to catch up on, at start or after a run.
	for deadline := time.Now().Add(time.Minute); ; {
		w.mu.Lock()
		settled := w.settled
		w.mu.Unlock()
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not settle")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestServeCatchesUpOnTheNight: a process that starts after the schedule
// fired, within the window, runs the night for the connectors that have not
// finished it, and only for them; started again, it does not run a night
// that completed.
func TestServeCatchesUpOnTheNight(t *testing.T) {
	t.Parallel()
	w := newCatchUpWorld(t, sandbox.Options{})
	e := w.e
	missed, done, paused := e.install("MISSED"), e.install("DONE"), e.install("PAUSED")
	e.execSQL(`UPDATE connectors SET first_sync_at = now() - interval '1 day'`)
	e.execSQL(`UPDATE connectors SET state = 'paused' WHERE id = $1`, paused.ID)
	e.importRows(missed, smsRows(0, 50))
	e.importRows(done, smsRows(100, 5))
	// DONE's night completed before the restart.
	sum := e.run(w.eng, engine.RunRequest{Trigger: engine.TriggerSchedule, BrandCodes: []string{done.BrandCode}})
	if cs := connSummary(t, sum, done.BrandCode); cs.Status != consent.RunCompleted {
		t.Fatalf("DONE's run = %+v", cs)
	}
	e.importRows(done, smsRows(200, 5)) // new work: for the next night, not a second run of this one

	w.serve(t)
	if len(w.jobs) != 1 || fmt.Sprint(w.jobs[0]) != "[MISSED]" {
		t.Fatalf("runs over %v, want one over MISSED", w.jobs)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE connector_id = $1 AND state = 'synced'`, missed.ID); n != 50 {
		t.Fatalf("%d of MISSED's 50 records synced by the catch-up", n)
	}
	if n := e.countSQL(`SELECT count(*) FROM runs WHERE connector_id = $1 AND trigger = 'schedule' AND status = 'completed'`, missed.ID); n != 1 {
		t.Fatalf("%d completed scheduled runs of MISSED, want 1", n)
	}
	if e.logLines("catching up on the night: these connectors have not finished it") != 1 {
		t.Fatalf("the catch-up is not logged:\n%s", e.logText())
	}

	// Started again: the night completed for every connector.
	runs := e.countSQL(`SELECT count(*) FROM runs`)
	w.jobs = nil
	w.serve(t)
	if len(w.jobs) != 0 || e.countSQL(`SELECT count(*) FROM runs`) != runs {
		t.Fatalf("a completed night ran again: %v", w.jobs)
	}
	if e.logLines("nothing to catch up on: every connector has finished the night, or is being run") != 1 {
		t.Fatalf("no log says why nothing ran:\n%s", e.logText())
	}
}

// TestServeRunsAFailedNightAgain: a connector whose run fails (İYS refuses
// the brand) is run again within the window, after a pause, the others
// not; once it completes, the night is done.
func TestServeRunsAFailedNightAgain(t *testing.T) {
	t.Parallel()
	w := newCatchUpWorld(t, sandbox.Options{DenyBrands: []string{"FLAKY"}})
	e := w.e
	flaky, fine := e.install("FLAKY"), e.install("FINE")
	e.execSQL(`UPDATE connectors SET first_sync_at = now() - interval '1 day'`)
	e.importRows(flaky, smsRows(0, 20))
	e.importRows(fine, smsRows(100, 20))
	w.afterJob = func() { // after the first run, the operator mends the brand's rights in the panel
		// Call, not Deny: the scheduler's goroutine may not end the test.
		if err := e.sb.Admin.Call(http.MethodPost, sandboxtest.PathDeny, sandboxtest.DenyRequest{BrandCode: "FLAKY"}, nil); err != nil {
			t.Errorf("undeny: %v", err)
		}
	}
	w.serve(t)
	if fmt.Sprint(w.jobs) != "[[FINE FLAKY] [FLAKY]]" {
		t.Fatalf("runs over %v, want both (no run yet), then FLAKY again", w.jobs)
	}
	var statuses string
	if err := e.db.QueryRow(`SELECT string_agg(status, ',' ORDER BY id) FROM runs WHERE connector_id = $1`, flaky.ID).Scan(&statuses); err != nil {
		t.Fatal(err)
	}
	if statuses != "failed,completed" {
		t.Fatalf("FLAKY's runs: %s, want failed,completed", statuses)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state = 'synced'`); n != 40 {
		t.Fatalf("%d of 40 records synced", n)
	}
}
