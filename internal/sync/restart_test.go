package sync_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// outage is the database out of reach: the gate refuses new connections,
// PostgreSQL restarts (fast shutdown: every connection is cut, the run
// locks go), and the gate stays closed until reopen.
type outage struct {
	at, restarted time.Duration // since the run started
	picture       string        // batches by state when it began
	err           error
}

// TestRunOutlivesPostgresRestart: PostgreSQL restarts mid-run and stays out
// of reach for 3 seconds more. The same run waits for it, takes its lock
// again, and finishes every record: completed, each consent sent to İYS
// exactly once (no bulk request sent again, none lost), every record with
// the outcome İYS gave it.
//
// 20,000 records go out in batches of 500, 4 at once, to a sandbox that
// takes 300 ms to process a bulk request; the outage begins once batches
// are done and others were just submitted, so that results come back from
// İYS while the database is down.
func TestRunOutlivesPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts a cluster of its own")
	}
	cluster := pgtest.Cluster(t)
	direct := cluster.URL("postgres")
	g := newGate(t, direct)
	e := envOn(t, g.url(direct), sandbox.Options{Latency: 10 * time.Millisecond, AsyncDelay: 300 * time.Millisecond})
	var err error
	if e.db, err = sql.Open("postgres", direct); err != nil { // the test's own queries go around the gate
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	c := e.install("RST")
	recs := e2eData(20000, 3)
	seedAtOnce(e, c, seedFor(recs))
	importE2E(e, c, recs)
	before := e.sb.Admin.Stats()

	opts := e.fastOptions()
	opts.BatchSize, opts.Concurrency = 500, 4
	opts.PollInitial, opts.PollMax = 50*time.Millisecond, 200*time.Millisecond
	opts.Transient, opts.DBRetryBase, opts.DBRetryMax = store.Transient, 50*time.Millisecond, 500*time.Millisecond
	eng := e.engine(opts, nil)

	const down = 3 * time.Second
	start := time.Now()
	ran := make(chan struct{})
	happened := make(chan outage, 1)
	var lockBack atomic.Bool
	go func() {
		var o outage
		defer func() { happened <- o }()
		for {
			var ready bool
			if o.err = e.db.QueryRow(`SELECT count(*) FILTER (WHERE state = 'done') >= 6 AND
				count(*) FILTER (WHERE state = 'submitted') >= 2 FROM batches`).Scan(&ready); o.err != nil {
				return
			}
			if ready {
				break
			}
			if time.Since(start) > time.Minute {
				o.err = errors.New("the run never got to the point of the outage")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		o.at, o.picture = time.Since(start), batchPicture(e)
		g.close()
		if o.err = cluster.Restart(context.Background()); o.err != nil {
			return
		}
		time.Sleep(down)
		o.restarted = time.Since(start)
		g.open()
		// The run takes its lock again while it goes on.
		for {
			select {
			case <-ran:
				return
			default:
			}
			var n int
			if err := e.db.QueryRow(`SELECT count(*) FROM pg_locks WHERE `+ourLocks+` AND granted
				AND classid = $1 AND objid = $2`, lockClass, c.ID).Scan(&n); err == nil && n == 1 {
				lockBack.Store(true)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the safety net
	defer cancel()
	sum, err := eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerRunNow})
	took := time.Since(start)
	close(ran)
	o := <-happened
	if o.err != nil {
		t.Fatalf("outage: %v", o.err)
	}
	if err != nil {
		t.Fatalf("the run returned an error of its own: %v", err)
	}
	cs := connSummary(t, sum, c.BrandCode)
	t.Logf("outage from %v into the run (%s) to %v; the run returned after %v: %+v",
		o.at.Round(time.Millisecond), o.picture, o.restarted.Round(time.Millisecond), took.Round(time.Millisecond), cs)
	if took < o.restarted {
		t.Fatalf("the run returned (%v) while the database was down (until %v)", took, o.restarted)
	}
	if ctx.Err() != nil {
		t.Fatal("the run hit its safety timeout")
	}
	acc, rej := expectCounts(recs)
	if cs.Status != consent.RunCompleted || cs.Pending != 0 || cs.Failed != 0 || cs.Err != "" ||
		cs.Accepted != acc || cs.Rejected != rej || cs.Sent != len(recs) {
		t.Fatalf("summary = %+v, want completed with %d accepted and %d rejected, %d sent, nothing left", cs, acc, rej, len(recs))
	}
	if !lockBack.Load() || e.logLines("run lock taken again") != 1 {
		t.Fatalf("the run did not take its lock again after the restart (seen %v, logged %d)",
			lockBack.Load(), e.logLines("run lock taken again"))
	}
	if e.logLines("database error: trying again") == 0 || e.logLines("database answers again") == 0 {
		t.Fatal("the run met no database error: the outage missed it")
	}
	back := e.logs.FilterMessage("database answers again").All()[0].Time.Sub(start)
	t.Logf("the run's first step went through %v after the database was back", (back - o.restarted).Round(time.Millisecond))
	var status string
	if err := e.db.QueryRow(`SELECT status FROM runs WHERE id = $1`, cs.RunID).Scan(&status); err != nil || status != "completed" {
		t.Fatalf("the run's row: %s %v, want completed", status, err)
	}

	// Every record as İYS answered it the first time: a consent sent again
	// would be already_in_iys (H174) instead of accepted.
	checkE2E(t, e, c, recs)
	after := e.sb.Admin.Stats()
	var batches int
	if err := e.db.QueryRow(`SELECT count(*) FROM batches WHERE request_id IS NOT NULL AND state = 'done'`).Scan(&batches); err != nil {
		t.Fatal(err)
	}
	got, bulk := after.Processed()-before.Processed(), after.Requests[sandboxtest.RouteSubmitBulk]-before.Requests[sandboxtest.RouteSubmitBulk]
	t.Logf("İYS got %d bulk requests and %d consents for %d records in %d batches", bulk, got, len(recs), batches)
	if got != int64(len(recs)) || bulk != int64(batches) {
		t.Fatalf("İYS processed %d consents in %d bulk requests, want %d in %d: each consent once", got, bulk, len(recs), batches)
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state <> 'done'`); n != 0 {
		t.Fatalf("%d batches not done (%s)", n, batchPicture(e))
	}
}

// TestResultsWaitForTheDatabase: PostgreSQL restarts while İYS processes
// the run's bulk requests, and stays down past the run's window. The run
// tries to write İYS's results until the window plus WriteGrace ends, then
// leaves each batch submitted with its requestId; its summary says the
// records left are unknown (never 0) and the run failed. The next run polls
// those requests again, sends nothing again, and records every result.
func TestResultsWaitForTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts a cluster of its own")
	}
	cluster := pgtest.Cluster(t)
	direct := cluster.URL("postgres")
	g := newGate(t, direct)
	e := envOn(t, g.url(direct), sandbox.Options{AsyncDelay: 2 * time.Second})
	var err error
	if e.db, err = sql.Open("postgres", direct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	c := e.install("WAIT")
	recs := e2eData(2000, 4)
	seedAtOnce(e, c, seedFor(recs))
	importE2E(e, c, recs)
	before := e.sb.Admin.Stats()

	opts := e.fastOptions()
	opts.BatchSize, opts.Concurrency = 500, 4
	opts.PollInitial, opts.PollMax = 50*time.Millisecond, 200*time.Millisecond
	opts.Transient, opts.DBRetryBase, opts.DBRetryMax = store.Transient, 50*time.Millisecond, 200*time.Millisecond
	opts.WriteGrace = time.Second
	eng := e.engine(opts, nil)

	restarted := make(chan error, 1)
	go func() {
		for {
			n := e.countSQL(`SELECT count(*) FROM batches WHERE state = 'submitted'`)
			if n == 4 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		g.close()
		restarted <- cluster.Restart(context.Background())
	}()
	start := time.Now()
	sum, err := eng.Run(context.Background(), engine.RunRequest{Trigger: engine.TriggerRunNow, Deadline: start.Add(4 * time.Second)})
	took := time.Since(start)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	cs := connSummary(t, sum, c.BrandCode)
	t.Logf("the run returned after %v: %+v", took.Round(time.Millisecond), cs)
	if cs.Status != consent.RunFailed || cs.Pending != engine.PendingUnknown || sum.Pending != engine.PendingUnknown ||
		!contains(cs.Err, "records left unknown") {
		t.Fatalf("summary = %+v (total pending %d), want failed with the records left unknown, saying why", cs, sum.Pending)
	}
	if took < 5*time.Second || took > 20*time.Second {
		t.Fatalf("the run returned after %v, want about the window (4 s) plus the write grace (1 s)", took)
	}
	js, err := json.Marshal(sum)
	if err != nil || !contains(string(js), `"Pending":null`) || contains(string(js), `"Pending":0`) {
		t.Fatalf("summary as JSON: %s %v, want Pending null", js, err)
	}
	gaveUp := e.logs.FilterMessage("could not record a batch's results").All()
	if len(gaveUp) != 4 {
		t.Fatalf("%d batches reported their results unwritten, want 4", len(gaveUp))
	}
	for _, en := range gaveUp { // not before the window's end: they were tried until then, and the grace
		if at := en.Time.Sub(start); at < 4*time.Second {
			t.Fatalf("a batch gave up writing its results %v into the run, before the window (4 s) ended", at)
		}
	}
	g.open()
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state = 'submitted' AND request_id IS NOT NULL`); n != 4 {
		t.Fatalf("%d batches left submitted with their requestId (%s), want 4", n, batchPicture(e))
	}

	sum2 := e.run(e.engine(opts, nil), engine.RunRequest{})
	cs2 := connSummary(t, sum2, c.BrandCode)
	acc, rej := expectCounts(recs)
	if cs2.Status != consent.RunCompleted || cs2.Pending != 0 || cs2.Sent != 0 || cs2.Accepted != acc || cs2.Rejected != rej {
		t.Fatalf("next run = %+v, want completed, %d accepted and %d rejected by polling, nothing sent", cs2, acc, rej)
	}
	checkE2E(t, e, c, recs)
	after := e.sb.Admin.Stats()
	if got, bulk := after.Processed()-before.Processed(), after.Requests[sandboxtest.RouteSubmitBulk]-before.Requests[sandboxtest.RouteSubmitBulk]; got != int64(len(recs)) || bulk != 4 {
		t.Fatalf("İYS processed %d consents in %d bulk requests, want %d in 4: each consent once", got, bulk, len(recs))
	}
	var status, errText string
	if err := e.db.QueryRow(`SELECT status, coalesce(error, '') FROM runs WHERE id = $1`, cs.RunID).Scan(&status, &errText); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || !contains(errText, "closed by run") {
		t.Fatalf("the first run's row: %s %q, want failed, closed by the next run", status, errText)
	}
}

// seedAtOnce is env.seed with every bulk request sent before any is
// waited for: the sandbox's async delay is paid once.
func seedAtOnce(e *env, c store.Connector, cs []consent.Consent) {
	e.t.Helper()
	ctx := context.Background()
	var ids []string
	for start := 0; start < len(cs); start += consent.MaxBulkSize {
		req, err := e.client.SubmitBulk(ctx, c.IYSCode, c.BrandCode, cs[start:min(start+consent.MaxBulkSize, len(cs))])
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, req.RequestID)
	}
	for _, id := range ids {
		res, err := e.client.WaitBulk(ctx, c.IYSCode, c.BrandCode, id, 50*time.Millisecond)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range res {
			if r.Status != iysclient.ResultSuccess {
				e.t.Fatalf("seeding: %+v", r)
			}
		}
	}
}

// batchPicture counts batches by state, for the log.
func batchPicture(e *env) string {
	var s string
	if err := e.db.QueryRow(`SELECT coalesce(string_agg(state || '=' || n, ' ' ORDER BY state), 'none')
		FROM (SELECT state, count(*) AS n FROM batches GROUP BY state) b`).Scan(&s); err != nil {
		return err.Error()
	}
	return "batches " + s
}

// TestRunStartsOnceTheDatabaseAnswers: a run that starts while the database
// is out of reach (the schedule fired during a restart) waits for it, then
// lists, locks and syncs its connectors as usual.
func TestRunStartsOnceTheDatabaseAnswers(t *testing.T) {
	direct := storedb.NewDB(t)
	g := newGate(t, direct)
	e := envOn(t, g.url(direct), sandbox.Options{})
	c := e.install("LATE")
	e.importRows(c, smsRows(0, 100))
	var err error
	if e.db, err = sql.Open("postgres", direct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	opts := e.fastOptions()
	opts.Transient, opts.DBRetryBase, opts.DBRetryMax = store.Transient, 50*time.Millisecond, 200*time.Millisecond
	eng := e.engine(opts, nil)

	g.cut()
	const down = 2 * time.Second
	time.AfterFunc(down, g.open)
	start := time.Now()
	sum := e.run(eng, engine.RunRequest{Deadline: start.Add(time.Minute)})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Accepted != 100 || cs.Pending != 0 {
		t.Fatalf("summary = %+v, want completed with every record", cs)
	}
	if took := time.Since(start); took < down {
		t.Fatalf("the run returned after %v, while the database was out of reach (%v)", took, down)
	}
	var waited bool
	for _, en := range e.logs.FilterMessage("database answers again").All() {
		if en.ContextMap()["step"] == "list the connectors" {
			waited = true
		}
	}
	if !waited {
		t.Fatalf("the run did not wait for the database to list its connectors:\n%s", e.logText())
	}
}
