package sync_test

import (
	"context"
	gosync "sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// lockClass is the store's first key of the connectors' run locks.
const lockClass = 0x6979_7372

// ourLocks is the condition on pg_locks for this test's database: other
// tests' run locks live in the same cluster.
const ourLocks = `locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// killLockSession ends the database session that holds the run locks, as a
// restart or a dropped connection would.
func killLockSession(e *env) {
	e.execSQL(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE `+ourLocks+` AND granted AND classid = $1`, lockClass)
}

// TestLostLockIsTakenAgain: the database session holding the run's lock
// dies mid-run while the database stays up; nobody else wants the
// connector, so the run takes its lock again and finishes the work, each
// consent sent once.
func TestLostLockIsTakenAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{Latency: 20 * time.Millisecond})
	c := e.install("LOCK")
	e.importRows(c, smsRows(0, 3000))
	opts := e.fastOptions()
	opts.Concurrency, opts.BatchSize = 1, 20
	rec := &recorder{}
	var once gosync.Once
	rec.onBatch = func(engine.BatchReport) { once.Do(func() { killLockSession(e) }) }
	opts.Observer = rec
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Accepted != 3000 || cs.Pending != 0 || cs.Err != "" {
		t.Fatalf("summary = %+v, want completed with every record", cs)
	}
	if e.logLines("run lock lost: taking it again once the database answers") != 1 || e.logLines("run lock taken again") != 1 {
		t.Fatalf("logs do not tell the lock was lost and taken again:\n%s", e.logText())
	}
	if st := e.sb.Admin.Stats(); st.Recorded != 3000 || len(st.Refused) != 0 {
		t.Fatalf("recorded %d, refused %v: want each consent sent once", st.Recorded, st.Refused)
	}
	if n := e.countSQL(`SELECT count(*) FROM pg_locks WHERE `+ourLocks+` AND classid = $1`, lockClass); n != 0 {
		t.Fatalf("%d run locks left after the run", n)
	}
}

// TestLockTakenByAnotherStopsThatConnector: the session holding the run's
// locks dies, and another run takes one of the connectors before this run
// can take it again. That connector's run stops cleanly, failed, saying
// so; the other connector goes on to the end. Nothing is lost or sent
// twice: the next run finishes the stopped connector.
func TestLockTakenByAnotherStopsThatConnector(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{Latency: 20 * time.Millisecond})
	a, b := e.install("TAKEN"), e.install("KEPT")
	e.importRows(a, smsRows(0, 2000))
	e.importRows(b, smsRows(10000, 2000))
	opts := e.fastOptions()
	opts.Concurrency, opts.BatchSize = 2, 20

	// The other run: a session that waits for A's lock, and so gets it the
	// moment the run's session dies.
	ctx := context.Background()
	other, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	took := make(chan error, 1)
	rec := &recorder{}
	var once gosync.Once
	rec.onBatch = func(engine.BatchReport) {
		once.Do(func() {
			go func() {
				_, err := other.ExecContext(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClass, a.ID)
				took <- err
			}()
			for e.countSQL(`SELECT count(*) FROM pg_locks WHERE `+ourLocks+` AND NOT granted AND objid = $1`, a.ID) == 0 {
				time.Sleep(time.Millisecond)
			}
			killLockSession(e)
			if err := <-took; err != nil {
				t.Errorf("the other run could not take the lock: %v", err)
			}
		})
	}
	opts.Observer = rec
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	ca, cb := connSummary(t, sum, a.BrandCode), connSummary(t, sum, b.BrandCode)
	t.Logf("stopped: %+v; went on: %+v", ca, cb)
	if ca.Status != consent.RunFailed || !contains(ca.Err, "another run") || ca.Accepted == 0 || ca.Pending == 0 {
		t.Fatalf("the connector another run took = %+v, want failed saying so, part of its work done", ca)
	}
	if cb.Status != consent.RunCompleted || cb.Accepted != 2000 || cb.Pending != 0 {
		t.Fatalf("the other connector = %+v, want completed with all its records", cb)
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE connector_id = $1 AND state = 'claimed'`, a.ID); n != 0 {
		t.Fatalf("%d batches of the stopped connector left claimed", n)
	}
	// Once the run knew its lock was lost, it claimed nothing more for the
	// connector (the claims already under way aside) while it tried to take
	// the lock again: the other run had it.
	lost := e.logs.FilterMessage("run lock lost: taking it again once the database answers").All()
	if len(lost) != 1 {
		t.Fatalf("%d lock losses logged, want 1", len(lost))
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE connector_id = $1 AND created_at > $2`,
		a.ID, lost[0].Time.Add(time.Second)); n != 0 {
		t.Fatalf("%d batches of the connector claimed while its lock was in doubt", n)
	}

	if _, err := other.ExecContext(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockClass, a.ID); err != nil {
		t.Fatal(err)
	}
	sum = e.run(e.engine(e.fastOptions(), nil), engine.RunRequest{})
	if ca2 := connSummary(t, sum, a.BrandCode); ca2.Status != consent.RunCompleted || ca.Accepted+ca2.Accepted != 2000 {
		t.Fatalf("next run = %+v", ca2)
	}
	if st := e.sb.Admin.Stats(); st.Recorded != 4000 || len(st.Refused) != 0 {
		t.Fatalf("recorded %d, refused %v: want each consent sent once", st.Recorded, st.Refused)
	}
}

// TestLockHeldBrieflyIsWaitedFor: when the run takes its lost lock again,
// a session that still holds it for a moment (the run's own old session,
// slow to go) does not make it give up the connector: it asks again, gets
// the lock, and finishes the work.
func TestLockHeldBrieflyIsWaitedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{Latency: 20 * time.Millisecond})
	c := e.install("BRIEF")
	e.importRows(c, smsRows(0, 2000))
	opts := e.fastOptions()
	opts.Concurrency, opts.BatchSize = 1, 20
	ctx := context.Background()
	other, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rec := &recorder{}
	var once gosync.Once
	rec.onBatch = func(engine.BatchReport) {
		once.Do(func() {
			took := make(chan error, 1)
			go func() {
				_, err := other.ExecContext(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClass, c.ID)
				took <- err
			}()
			for e.countSQL(`SELECT count(*) FROM pg_locks WHERE `+ourLocks+` AND NOT granted AND objid = $1`, c.ID) == 0 {
				time.Sleep(time.Millisecond)
			}
			killLockSession(e)
			if err := <-took; err != nil {
				t.Errorf("could not take the lock: %v", err)
				return
			}
			go func() { // held until the run has found it held, then let go
				for e.logLines("run lock lost: taking it again once the database answers") == 0 {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(time.Second)
				if _, err := other.ExecContext(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockClass, c.ID); err != nil {
					t.Error(err)
				}
			}()
		})
	}
	opts.Observer = rec
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Accepted != 2000 || cs.Pending != 0 {
		t.Fatalf("summary = %+v, want completed with every record", cs)
	}
	if e.logLines("run lock taken again") != 1 {
		t.Fatalf("the lock was not taken again:\n%s", e.logText())
	}
	if st := e.sb.Admin.Stats(); st.Recorded != 2000 || len(st.Refused) != 0 {
		t.Fatalf("recorded %d, refused %v: want each consent sent once", st.Recorded, st.Refused)
	}
}
