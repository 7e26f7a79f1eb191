package sync_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// envOn is newEnv on a database of the caller's: a cluster of the test's
// own, which the test may restart.
func envOn(t *testing.T, url string, sbOpts sandbox.Options) *env {
	t.Helper()
	e := &env{t: t, url: url}
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	if e.db, err = sql.Open("postgres", url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if sbOpts.Seed == 0 {
		sbOpts.Seed = 1
	}
	sbOpts.Username, sbOpts.Password = sbUser, sbPassword
	if e.sb, err = sandbox.New(sbOpts); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.sb.Handler())
	t.Cleanup(e.srv.Close)
	core, logs := observer.New(zapcore.InfoLevel)
	e.logs, e.log = logs, zap.New(core)
	e.client = e.newClient()
	return e
}

// TestSyncSurvivesPostgresRestart is the "Done when": a restart of
// PostgreSQL during a run ends with the run either resuming or failing
// cleanly, and the next run finishes the work.
//
// 20,000 records go out in batches of 1000, 8 at once, to a sandbox that
// takes 3 s to process a bulk request, as İYS takes its time. Once the
// first batches are done and others were just submitted (their requestIds
// saved), PostgreSQL is restarted (fast shutdown: every connection is cut,
// the run lock's too). The run must return, well within its safety
// timeout, completed, partial or failed with an error that says why; the
// requests it was polling are left submitted when it notices its lock is
// gone. A second run must poll those (not send them again) and finish.
// Then İYS must hold exactly what was imported, every record its outcome,
// nothing in flight, no batch open; only the records of batches whose
// requestId was never saved may have been sent twice, and İYS answers them
// H174 (already_in_iys).
func TestSyncSurvivesPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts a cluster of its own")
	}
	cluster := pgtest.Cluster(t)
	const asyncDelay = 3 * time.Second
	e := envOn(t, cluster.URL("postgres"), sandbox.Options{Latency: 10 * time.Millisecond, AsyncDelay: asyncDelay})
	c := e.install("RST")
	recs := e2eData(20000, 3)
	seedAtOnce(e, c, seedFor(recs))
	importE2E(e, c, recs)
	before := e.stats()

	opts := e.fastOptions()
	opts.BatchSize, opts.Concurrency = 1000, 8
	opts.PollInitial, opts.PollMax = 50*time.Millisecond, 200*time.Millisecond
	// Once the run notices its lock is gone (the store checks every 2 s),
	// polls in flight get this long, then are left for the next run: less
	// than what is left of İYS's 3 s, so the requests just sent are left.
	opts.StopGrace = 100 * time.Millisecond
	eng := e.engine(opts, nil)

	type restartResult struct {
		at, took time.Duration
		picture  string
		err      error
	}
	restarted := make(chan restartResult, 1)
	start := time.Now()
	go func() {
		// Restart once batches are done and at least two others were sent
		// less than half a second ago: their requestIds are saved, and İYS
		// takes 2.5 s more to finish them, longer than the run takes to
		// notice its lock is gone (at most 2 s) and give up polling.
		var r restartResult
		for {
			var ready bool
			if err := e.db.QueryRow(`SELECT count(*) FILTER (WHERE state = 'done') >= 4 AND
				count(*) FILTER (WHERE state = 'submitted' AND submitted_at > now() - interval '500 milliseconds') >= 2 FROM batches`).Scan(&ready); err != nil {
				r.err = err
				restarted <- r
				return
			}
			if ready {
				break
			}
			if time.Since(start) > time.Minute {
				r.err = errors.New("the run never got to the point of the restart")
				restarted <- r
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		r.at = time.Since(start)
		r.picture = batchPicture(e)
		r.err = cluster.Restart(context.Background())
		r.took = time.Since(start) - r.at
		restarted <- r
	}()

	// The safety net: a run that does not return within a minute hangs.
	const limit = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	type runResult struct {
		sum engine.Summary
		err error
	}
	ran := make(chan runResult, 1)
	go func() {
		sum, err := eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerRunNow})
		ran <- runResult{sum, err}
	}()
	var first runResult
	select {
	case first = <-ran:
	case <-time.After(limit + 30*time.Second):
		t.Fatalf("the run did not return %v after it started: it hangs", limit+30*time.Second)
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the run hit its safety timeout (%v): it hung on the restart", limit)
	}
	r := <-restarted
	if r.err != nil {
		t.Fatalf("restart: %v", r.err)
	}
	if r.at > took {
		t.Fatalf("the run returned (%v) before PostgreSQL was restarted (%v)", took, r.at)
	}
	if first.err != nil {
		t.Fatalf("the run returned an error of its own: %v", first.err)
	}
	cs := connSummary(t, first.sum, c.BrandCode)
	t.Logf("restarted %v into the run (%s) in %v; the run returned after %v: %+v",
		r.at.Round(time.Millisecond), r.picture, r.took.Round(time.Millisecond), took.Round(time.Millisecond), cs)
	switch cs.Status {
	case consent.RunFailed:
		if cs.Err == "" {
			t.Fatalf("the run failed without saying why: %+v", cs)
		}
	case consent.RunPartial, consent.RunCompleted:
	default:
		t.Fatalf("the run ended %q: want completed, partial or failed", cs.Status)
	}
	if cs.Status == consent.RunCompleted && cs.Pending == 0 {
		t.Logf("the run resumed after the restart and finished the work")
	}
	left := batchPicture(e)
	t.Logf("left for the next run: %s", left)
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state = 'submitted'`); n == 0 {
		t.Fatalf("the restart left no bulk request in flight (%s): the test did not test recovering one", left)
	}

	// The next run finishes the work.
	start = time.Now()
	sum2 := e.run(e.engine(opts, nil), engine.RunRequest{})
	cs2 := connSummary(t, sum2, c.BrandCode)
	t.Logf("second run: %v, %+v", time.Since(start).Round(time.Millisecond), cs2)
	if cs2.Status != consent.RunCompleted || cs2.Pending != 0 || cs2.Failed != 0 || cs2.Err != "" {
		t.Fatalf("second run = %+v, want completed with nothing left", cs2)
	}

	// The first run's row is closed: as the engine said, or, if writing its
	// end failed (the server was down), by the second run.
	var status, errText string
	if err := e.db.QueryRow(`SELECT status, coalesce(error, '') FROM runs WHERE id = $1`, cs.RunID).Scan(&status, &errText); err != nil {
		t.Fatal(err)
	}
	t.Logf("the first run's row: %s %q", status, errText)
	if status != string(cs.Status) && (status != string(consent.RunFailed) || !contains(errText, "closed by run")) {
		t.Fatalf("the first run's row is %s %q; the engine said %s", status, errText, cs.Status)
	}

	checkAfterRestart(t, e, c, recs)

	// What İYS received: every record once, plus at most the records of
	// the batches whose requestId was never saved.
	var unsavedBatches, unsavedRecords, savedBatches int
	if err := e.db.QueryRow(`SELECT count(*) FILTER (WHERE request_id IS NULL), coalesce(sum(size) FILTER (WHERE request_id IS NULL), 0),
		count(*) FILTER (WHERE request_id IS NOT NULL) FROM batches`).Scan(&unsavedBatches, &unsavedRecords, &savedBatches); err != nil {
		t.Fatal(err)
	}
	after := e.stats()
	items := func(s sbStats) int64 {
		n := s.Recorded
		for _, v := range s.Refused {
			n += v
		}
		return n
	}
	got, bulk := items(after)-items(before), after.Requests[bulkRoute]-before.Requests[bulkRoute]
	t.Logf("İYS got %d bulk requests (%d batches saved, %d not, holding %d records) and %d consents for %d records",
		bulk, savedBatches, unsavedBatches, unsavedRecords, got, len(recs))
	if got < int64(len(recs)) || got-int64(len(recs)) > int64(unsavedRecords) {
		t.Fatalf("İYS processed %d consents for %d records: %d sent twice, but only the %d records of unsaved batches may be",
			got, len(recs), got-int64(len(recs)), unsavedRecords)
	}
	if bulk < int64(savedBatches) || bulk > int64(savedBatches+unsavedBatches) {
		t.Fatalf("%d bulk requests for %d saved and %d unsaved batches", bulk, savedBatches, unsavedBatches)
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

// checkAfterRestart is checkE2E allowing what a restart may leave: a record
// sent again because its batch's requestId was never saved is synced as
// already_in_iys (H174) instead of accepted.
func checkAfterRestart(t *testing.T, e *env, c store.Connector, recs []e2eRecord) {
	t.Helper()
	held := e.sandboxConsents(c.BrandCode)
	dbRecs := e.records(c)
	unsaved := map[int64]bool{} // records of the batches whose requestId was never saved
	rows, err := e.db.Query(`SELECT DISTINCT bi.consent_id FROM batch_items bi JOIN batches b ON b.id = bi.batch_id WHERE b.request_id IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		unsaved[id] = true
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	want, resent := 0, 0
	var resentIDs []int64
	for _, r := range recs {
		k := key(r.row)
		got, ok := held[k]
		db := dbRecs[k]
		if db.Version != 1 || db.ExternalID != r.row.ExternalID {
			t.Fatalf("%s: db record %+v", k, db)
		}
		if r.kind == kindRetNoPrior {
			if ok {
				t.Fatalf("%s: İYS holds %+v, but a RET with no prior record is not listed", k, got)
			}
			if db.State != consent.StateRejected || db.Outcome.V != consent.OutcomeNoPriorRecord || db.IYSCode.String != "H175" {
				t.Fatalf("%s: db %s/%v/%s, want rejected/no_prior_record/H175", k, db.State, db.Outcome.V, db.IYSCode.String)
			}
			continue
		}
		want++
		if !ok {
			t.Fatalf("%s (kind %d): İYS holds nothing", k, r.kind)
		}
		if got.Recipient != r.row.Recipient || got.Type != string(r.row.Type) || got.RecipientType != string(r.row.RecipientType) ||
			got.Status != string(r.row.Status) || got.ConsentDate != r.row.ConsentDate.String() || got.Source != string(r.row.Source) ||
			got.IYSCode != c.IYSCode {
			t.Fatalf("%s: İYS holds %+v, imported %+v", k, got, r.row)
		}
		already := db.State == consent.StateSynced && db.Outcome.V == consent.OutcomeAlreadyInIYS && db.IYSCode.String == "H174"
		switch {
		case r.kind == kindAlreadyHeld:
			if !already {
				t.Fatalf("%s: db %s/%v/%s, want synced/already_in_iys/H174", k, db.State, db.Outcome.V, db.IYSCode.String)
			}
		case already:
			resent++
			resentIDs = append(resentIDs, db.ID)
		case db.State != consent.StateSynced || db.Outcome.V != consent.OutcomeAccepted || db.TransactionID.String == "" ||
			db.TransactionID.String != got.TransactionID:
			t.Fatalf("%s: db %s/%v tx %q, want synced/accepted with İYS's transaction %q", k, db.State, db.Outcome.V,
				db.TransactionID.String, got.TransactionID)
		}
	}
	if len(held) != want {
		t.Fatalf("İYS holds %d records of the brand, want %d", len(held), want)
	}
	if len(dbRecs) != len(recs) {
		t.Fatalf("%d records in the database, want %d", len(dbRecs), len(recs))
	}
	t.Logf("%d records accepted at the first sending were sent again and found already in İYS", resent)
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state IN ('pending', 'in_flight', 'failed')`); n != 0 {
		t.Fatalf("%d records pending, in flight or failed, want none", n)
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state IN ('claimed', 'submitted')`); n != 0 {
		t.Fatalf("%d batches left open", n)
	}
	// A record whose requestId was saved is never put in a later batch: its
	// request is polled, not sent again.
	if n := e.countSQL(`SELECT count(*) FROM batch_items a JOIN batches ba ON ba.id = a.batch_id AND ba.request_id IS NOT NULL
		JOIN batch_items b ON b.consent_id = a.consent_id AND b.batch_id > a.batch_id`); n != 0 {
		t.Fatalf("%d records were claimed again after their requestId was saved", n)
	}
	// A record sent again was in a batch whose requestId was never saved.
	for _, id := range resentIDs {
		if !unsaved[id] {
			t.Fatalf("record %d was found already in İYS though every batch of it had its requestId saved", id)
		}
	}
}
