package sync_test

import (
	"context"
	"fmt"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// TestNewerConsentWhileInFlight: a newer consent imported while its record
// is in a bulk request in flight makes the record pending at the new
// version; the old request's result does not overwrite it, and the newer
// consent goes out next.
func TestNewerConsentWhileInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{AsyncDelay: 50 * time.Millisecond})
	c := e.install("VER")
	rows := smsRows(0, 10)
	e.importRows(c, rows)
	target := rows[3]
	newer := target
	newer.Line, newer.Status, newer.ConsentDate = 1, consent.StatusRet, consent.NewDate(time.Now().Add(-time.Minute))

	hook := &hookIYS{}
	hook.afterSubmit = func(n int, _ engine.Submission) {
		if n == 1 {
			e.importRows(c, []store.ImportRow{newer}) // İYS has the old one; we have not polled yet
		}
	}
	opts := e.fastOptions()
	opts.Concurrency = 1
	rec := &recorder{}
	var afterFirst store.Record
	rec.onBatch = func(b engine.BatchReport) {
		if len(rec.reports()) == 1 {
			afterFirst = e.records(c)[key(target)]
		}
	}
	opts.Observer = rec
	hook.IYS = adapterOf(e)
	sum := e.run(e.engine(opts, hook), engine.RunRequest{})

	reports := rec.reports()
	if len(reports) != 2 {
		t.Fatalf("%d batches, want 2: the batch, then the newer consent", len(reports))
	}
	if reports[0].Tally.Stale != 1 || reports[0].Tally.Accepted != 9 || reports[0].Size != 10 {
		t.Fatalf("first batch = %+v, want 9 accepted and 1 stale verdict", reports[0].Tally)
	}
	if afterFirst.State != consent.StatePending || afterFirst.Version != 2 || afterFirst.Outcome.Valid ||
		afterFirst.Status != consent.StatusRet {
		t.Fatalf("after the first batch the record is %+v: want pending at version 2, no outcome", afterFirst)
	}
	if reports[1].Size != 1 || reports[1].Tally.Accepted != 1 {
		t.Fatalf("second batch = %+v, want the newer consent, accepted", reports[1])
	}
	got := e.records(c)[key(target)]
	if got.State != consent.StateSynced || got.Version != 2 || got.Status != consent.StatusRet ||
		got.Outcome.V != consent.OutcomeAccepted {
		t.Fatalf("record = %+v, want the RET synced at version 2", got)
	}
	held := e.sb.Admin.Held(c.BrandCode)[key(target)]
	if held.Status != "RET" || held.ConsentDate != newer.ConsentDate.String() {
		t.Fatalf("İYS holds %+v, want the newer RET", held)
	}
	if cs := connSummary(t, sum, c.BrandCode); cs.Status != consent.RunCompleted || cs.Sent != 11 || cs.Accepted != 10 {
		t.Fatalf("summary = %+v", cs)
	}
}

// TestRecoveryPollsSavedRequestsWithoutResending: a run that died after
// saving its bulk request's requestId is not sent again: the next run polls
// the request and records its results, and closes the dead run.
func TestRecoveryPollsSavedRequestsWithoutResending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{AsyncDelay: 100 * time.Millisecond})
	c := e.install("REC")
	rows := smsRows(0, 30)
	rows[5].Status = consent.StatusRet // no prior record: H175 when recorded
	e.importRows(c, rows)
	ctx := context.Background()

	// What a run leaves when it dies right after saving the requestId.
	dead, err := e.st.StartRun(ctx, c.ID, consent.TriggerSchedule)
	if err != nil {
		t.Fatal(err)
	}
	batchID, recs, err := e.st.ClaimBatchAfter(ctx, c.ID, dead, 20, time.Now(), consent.ClaimPos{})
	if err != nil || len(recs) != 20 {
		t.Fatal(len(recs), err)
	}
	items := make([]consent.Consent, len(recs))
	ids := make([]int64, len(recs))
	for i, r := range recs {
		items[i], ids[i] = r.Consent, r.ID
	}
	req, err := e.client.SubmitBulk(ctx, c.IYSCode, c.BrandCode, items)
	if err != nil {
		t.Fatal(err)
	}
	subs := make([]string, len(req.Items))
	for i, it := range req.Items {
		subs[i] = it.SubrequestID
	}
	if err := e.st.SaveSubmission(ctx, batchID, req.RequestID, ids, subs); err != nil {
		t.Fatal(err)
	}
	// ...and a second dead run that claimed a batch but never sent it.
	dead2, err := e.st.StartRun(ctx, c.ID, consent.TriggerSchedule)
	if err != nil {
		t.Fatal(err)
	}
	if _, recs2, err := e.st.ClaimBatchAfter(ctx, c.ID, dead2, 20, time.Now(), consent.ClaimPos{}); err != nil || len(recs2) != 10 {
		t.Fatal(len(recs2), err)
	}
	if n := e.sb.Admin.Stats().Requests[sandboxtest.RouteSubmitBulk]; n != 1 {
		t.Fatalf("%d bulk requests before recovery, want 1", n)
	}

	rec := &recorder{}
	opts := e.fastOptions()
	opts.Observer = rec
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Sent != 10 || cs.Accepted != 29 || cs.Rejected != 1 {
		t.Fatalf("summary = %+v, want the 20 recovered (sent 0 in this run) and the 10 released ones sent", cs)
	}
	st := e.sb.Admin.Stats()
	if n := st.Requests[sandboxtest.RouteSubmitBulk]; n != 2 {
		t.Fatalf("%d bulk requests in all, want 2: the dead run's (polled, not resent) and one for the released batch", n)
	}
	if st.Refused["H174"] != 0 {
		t.Fatalf("İYS saw %d consents twice (H174)", st.Refused["H174"])
	}
	for k, r := range e.records(c) {
		want := consent.OutcomeAccepted
		if strings.HasSuffix(k, "/MESAJ") && r.Recipient == rows[5].Recipient {
			want = consent.OutcomeNoPriorRecord
		}
		if r.Outcome.V != want || r.Attempts != 1 {
			t.Fatalf("%s: %s/%v after %d tries, want %s after 1", k, r.State, r.Outcome.V, r.Attempts, want)
		}
	}
	// Each dead run was closed by the next run of the connector.
	for id, by := range map[int64]int64{dead: dead2, dead2: cs.RunID} {
		r, err := e.st.RunByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != consent.RunFailed || r.Error.String != fmt.Sprintf("killed (closed by run %d)", by) {
			t.Fatalf("dead run %d = %+v, want failed: killed (closed by run %d)", id, r, by)
		}
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE id = $1 AND state = 'done'`, batchID); n != 1 {
		t.Fatal("the recovered batch is not done")
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE run_id = $1 AND state = 'released'`, dead2); n != 1 {
		t.Fatal("the claimed batch was not released")
	}
}

// TestStopAfterSubmitLeavesTheBatchForRecovery: the run is stopped right
// after İYS accepted a bulk request; the requestId is saved, the batch left
// submitted (the grace is too short to finish), and the next run records it
// without sending it again.
func TestStopAfterSubmitLeavesTheBatchForRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{AsyncDelay: 200 * time.Millisecond})
	c := e.install("STOP")
	e.importRows(c, smsRows(0, 40))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hook := &hookIYS{IYS: adapterOf(e), afterSubmit: func(int, engine.Submission) { cancel() }}
	opts := e.fastOptions()
	opts.Concurrency, opts.BatchSize, opts.StopGrace = 1, 25, time.Nanosecond
	sum, err := e.engine(opts, hook).Run(ctx, engine.RunRequest{Trigger: engine.TriggerSchedule})
	if err != nil {
		t.Fatal(err)
	}
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunPartial || cs.Pending != 40 || sum.Pending != 40 {
		t.Fatalf("stopped run = %+v, want partial with 40 left (25 in flight, 15 pending)", cs)
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state = 'submitted' AND request_id IS NOT NULL`); n != 1 {
		t.Fatalf("%d submitted batches with a saved requestId, want 1", n)
	}
	if n := e.countSQL(`SELECT count(*) FROM batch_items WHERE subrequest_id IS NOT NULL`); n != 25 {
		t.Fatalf("%d saved subrequest ids, want 25", n)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state = 'in_flight'`); n != 25 {
		t.Fatalf("%d records in flight, want the 25 İYS has", n)
	}
	sum = e.run(e.engine(e.fastOptions(), nil), engine.RunRequest{})
	if cs := connSummary(t, sum, c.BrandCode); cs.Status != consent.RunCompleted || cs.Accepted != 40 || cs.Sent != 15 {
		t.Fatalf("next run = %+v, want all 40 accepted, 15 of them sent", cs)
	}
	if n := e.sb.Admin.Stats().Requests[sandboxtest.RouteSubmitBulk]; n != 2 {
		t.Fatalf("%d bulk requests, want 2 (nothing sent twice)", n)
	}
	if n := len(e.sb.Admin.Held(c.BrandCode)); n != 40 {
		t.Fatalf("İYS holds %d records, want 40", n)
	}
}

// TestTwoEnginesNeverSendTwice: two engines (two processes: their own pools)
// on the same database and İYS. While one runs, the other skips its
// connectors; started together, each connector is served by exactly one,
// and every consent is sent exactly once.
func TestTwoEnginesNeverSendTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{Latency: 5 * time.Millisecond})
	brands := []string{"TWA", "TWB", "TWC", "TWD"}
	var conns []store.Connector
	for i, b := range brands {
		c := e.install(b)
		conns = append(conns, c)
		e.importRows(c, smsRows(i*1000, 300))
	}
	other, err := store.Open(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	opts := e.fastOptions()
	opts.BatchSize = 50

	// Phase 1: A is running (held inside its first request) when B starts.
	inside := make(chan struct{})
	bDone := make(chan struct{})
	var once gosync.Once
	hookA := &hookIYS{IYS: adapterOf(e), afterSubmit: func(int, engine.Submission) {
		once.Do(func() { close(inside); <-bDone })
	}}
	engA := e.engine(opts, hookA)
	engB, err := engine.New(other, adapterOf(e), opts)
	if err != nil {
		t.Fatal(err)
	}
	var sumA engine.Summary
	var errA error
	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		sumA, errA = engA.Run(context.Background(), engine.RunRequest{Trigger: engine.TriggerRunNow})
	}()
	<-inside
	sumB, err := engB.Run(context.Background(), engine.RunRequest{Trigger: engine.TriggerSchedule})
	close(bDone)
	<-aDone
	if err != nil || errA != nil {
		t.Fatal(err, errA)
	}
	for _, b := range brands {
		if cs := connSummary(t, sumB, b); !cs.Skipped || cs.RunID != 0 || cs.Sent != 0 {
			t.Fatalf("B's %s = %+v, want skipped", b, cs)
		}
		if cs := connSummary(t, sumA, b); cs.Skipped || cs.Status != consent.RunCompleted || cs.Sent != 300 {
			t.Fatalf("A's %s = %+v, want completed with 300 sent", b, cs)
		}
	}

	// Phase 2: new consents, both engines started at once.
	for i, c := range conns {
		e.importRows(c, smsRows(10000+i*1000, 300))
	}
	engA = e.engine(opts, nil)
	var wg gosync.WaitGroup
	sums := make([]engine.Summary, 2)
	errs := make([]error, 2)
	for i, eng := range []*engine.Engine{engA, engB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = eng.Run(context.Background(), engine.RunRequest{Trigger: engine.TriggerRunNow})
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	for _, b := range brands {
		a, bb := connSummary(t, sums[0], b), connSummary(t, sums[1], b)
		// One serves it; the other skips it, or (had it started only after
		// the first was done) finds nothing left to send.
		if a.Skipped && bb.Skipped || a.Sent > 0 && bb.Sent > 0 || a.Sent+bb.Sent != 300 {
			t.Fatalf("%s: A %+v, B %+v: want exactly one to send its 300", b, a, bb)
		}
	}
	st := e.sb.Admin.Stats()
	if st.Recorded != 4*600 || len(st.Refused) != 0 {
		t.Fatalf("İYS recorded %d and refused %v, want 2400 recorded, each once", st.Recorded, st.Refused)
	}
	if n := st.Requests[sandboxtest.RouteSubmitBulk]; n != 2*4*300/50 {
		t.Fatalf("%d bulk requests, want %d", n, 2*4*300/50)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state <> 'synced' OR attempts <> 1`); n != 0 {
		t.Fatalf("%d records not synced after exactly one try", n)
	}
}

// TestTransientFailuresSpendTheRetryBudget: İYS answers nothing but 5xx;
// the records are tried RetryBudget times, with a delay, then fail with
// the last error. The run waits for retries due soon.
func TestTransientFailuresSpendTheRetryBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{FailRate: 1})
	c := e.install("TRN")
	e.importRows(c, smsRows(0, 30))
	e.client = e.newClient() // no login succeeds either
	opts := e.fastOptions()
	opts.RetryBudget, opts.BatchSize = 3, 20
	rec := &recorder{}
	opts.Observer = rec
	eng := e.engine(opts, adapterOf(e, shortRetries()...))
	sum := e.run(eng, engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Failed != 30 || cs.Retried != 60 || cs.Pending != 0 || cs.Sent != 0 || sum.Failed != 30 {
		t.Fatalf("summary = %+v, want 30 failed after 2 retries each", cs)
	}
	if cs.Status != consent.RunPartial || !contains(cs.Err, "30 records failed") {
		t.Fatalf("status %s, error %q: want partial, naming the failed records", cs.Status, cs.Err)
	}
	for k, r := range e.records(c) {
		if r.State != consent.StateFailed || r.Outcome.Valid || r.Attempts != 3 || !contains(r.IYSMessage.String, "HTTP 50") {
			t.Fatalf("%s = %s, %d tries, message %q: want failed after 3 with the last HTTP error", k, r.State, r.Attempts, r.IYSMessage.String)
		}
	}
	fails := rec.failures()
	if len(fails) == 0 || fails[0].Class != consent.ClassTransient || fails[0].Call != "submit" {
		t.Fatalf("request failures = %+v", fails)
	}
}

// TestDeniedBrandStopsOnlyItsRun: İYS refuses one brand (no partner
// permission): its run fails with a message saying what to fix, its records
// stay pending with their tries not counted; the other brand syncs.
func TestDeniedBrandStopsOnlyItsRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{DenyBrands: []string{"DENY"}})
	ok, deny := e.install("OKB"), e.install("DENY")
	e.importRows(ok, smsRows(0, 50))
	e.importRows(deny, smsRows(1000, 50))
	opts := e.fastOptions()
	opts.BatchSize = 10
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	d := connSummary(t, sum, "DENY")
	if d.Status != consent.RunFailed || !contains(d.Err, "İş Ortaklığı") || !contains(d.Err, "H353") || d.Pending != 50 {
		t.Fatalf("denied brand = %+v, want failed, naming H353 and the İş Ortaklığı rights", d)
	}
	for k, r := range e.records(deny) {
		if r.State != consent.StatePending || r.Attempts != 0 {
			t.Fatalf("%s = %s after %d tries, want pending with none counted", k, r.State, r.Attempts)
		}
	}
	if n := e.sb.Admin.Stats().Forbidden; n < 1 || n > 4 {
		t.Fatalf("%d refused requests, want the connector stopped after the first (or the few in flight)", n)
	}
	if o := connSummary(t, sum, "OKB"); o.Status != consent.RunCompleted || o.Accepted != 50 {
		t.Fatalf("the other brand = %+v, want completed", o)
	}
	run, _, _ := e.st.LastRun(t.Context(), deny.ID)
	if run.Status != consent.RunFailed || !contains(run.Error.String, "İş Ortaklığı") {
		t.Fatalf("run row = %+v", run)
	}
	if !contains(e.logText(), `"level":"error"`) {
		t.Fatal("the refusal was not logged as an error")
	}
}

// TestPreCheckRejectsLocally: consents İYS must refuse for their values
// alone are rejected at once (outcome invalid, İYS's code) and never sent.
func TestPreCheckRejectsLocally(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.install("PRE")
	rows := smsRows(0, 4)
	rows[0].ConsentDate = consent.NewDate(time.Now().Add(24 * time.Hour))              // future
	rows[1].ConsentDate = consent.NewDate(time.Date(2014, 3, 1, 9, 0, 0, 0, time.UTC)) // before 2015-05-01
	rows[2].Source = consent.Source2015                                                // HS_2015 on another date
	e.importRows(c, rows)
	onlyBad := smsRows(100, 2)
	for i := range onlyBad {
		onlyBad[i].ConsentDate = consent.NewDate(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	other := e.install("PRE2")
	e.importRows(other, onlyBad)

	sum := e.run(e.engine(e.fastOptions(), nil), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Sent != 1 || cs.Rejected != 3 || cs.Accepted != 1 {
		t.Fatalf("summary = %+v, want 1 sent and accepted, 3 rejected locally", cs)
	}
	want := map[int]consent.Code{0: consent.CodeFutureDate, 1: consent.CodeBefore2015, 2: consent.CodeBadHS2015Date}
	recs := e.records(c)
	for i, code := range want {
		r := recs[key(rows[i])]
		if r.State != consent.StateRejected || r.Outcome.V != consent.OutcomeInvalid || r.IYSCode.String != string(code) ||
			!strings.HasPrefix(r.IYSMessage.String, "not sent: ") {
			t.Fatalf("row %d = %s/%v %s %q, want rejected/invalid %s", i, r.State, r.Outcome.V, r.IYSCode.String, r.IYSMessage.String, code)
		}
	}
	held := e.sb.Admin.Held(c.BrandCode)
	if len(held) != 1 || held[key(rows[3])].Status != "ONAY" {
		t.Fatalf("İYS holds %+v, want only the valid consent", held)
	}
	st := e.sb.Admin.Stats()
	if st.Requests[sandboxtest.RouteSubmitBulk] != 1 || len(st.Refused) != 0 {
		t.Fatalf("bulk requests %d, refused %v: want one request, and nothing for İYS to refuse", st.Requests[sandboxtest.RouteSubmitBulk], st.Refused)
	}
	if o := connSummary(t, sum, "PRE2"); o.Status != consent.RunCompleted || o.Sent != 0 || o.Rejected != 2 {
		t.Fatalf("a batch of invalid consents only = %+v, want them rejected, nothing sent", o)
	}
}

// TestRoundRobinServesSmallBrandsEarly: with one request at a time, a
// brand with a tenth of the records of another finishes early, not after
// the big one.
func TestRoundRobinServesSmallBrandsEarly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	big, small := e.install("BIG"), e.install("SMALL")
	e.importRows(big, smsRows(0, 1000))
	e.importRows(small, smsRows(5000, 100))
	opts := e.fastOptions()
	opts.Concurrency, opts.BatchSize = 1, 50
	rec := &recorder{}
	opts.Observer = rec
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	reports := rec.reports()
	if len(reports) != 22 {
		t.Fatalf("%d batches, want 22", len(reports))
	}
	last := -1
	for i, b := range reports {
		if b.BrandCode == "SMALL" {
			last = i
		}
	}
	// Alternating, SMALL's 2 batches are the 2nd and 4th; allow one slot of slack.
	if last < 0 || last > 4 {
		t.Fatalf("SMALL's last batch was number %d of 22, want by the 5th: %v", last+1, brandsOf(reports))
	}
	for _, b := range []string{"BIG", "SMALL"} {
		if cs := connSummary(t, sum, b); cs.Status != consent.RunCompleted {
			t.Fatalf("%s = %+v", b, cs)
		}
	}
}

func brandsOf(rs []engine.BatchReport) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.BrandCode
	}
	return out
}

// TestDeadlineStopsCleanly: the window ends mid-run: the run stops claiming,
// finishes what is in flight, ends partial with nothing in flight; the next
// run sends the rest, nothing twice.
func TestDeadlineStopsCleanly(t *testing.T) { // not parallel: it times a 1 s deadline
	e := newEnv(t, sandbox.Options{Latency: 50 * time.Millisecond, AsyncDelay: 50 * time.Millisecond})
	c := e.install("DL")
	e.importRows(c, smsRows(0, 2000))
	opts := e.fastOptions()
	opts.Concurrency, opts.BatchSize = 2, 50
	start := time.Now()
	sum := e.run(e.engine(opts, nil), engine.RunRequest{Deadline: time.Now().Add(time.Second)})
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("the run went on for %v after a 1s deadline", took)
	}
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunPartial || cs.Accepted == 0 || cs.Pending == 0 || cs.Accepted+cs.Pending != 2000 {
		t.Fatalf("summary = %+v, want partial with some synced and the rest pending", cs)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state = 'in_flight'`); n != 0 {
		t.Fatalf("%d records left in flight", n)
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state IN ('claimed', 'submitted')`); n != 0 {
		t.Fatalf("%d batches left open", n)
	}
	run, _, _ := e.st.LastRun(t.Context(), c.ID)
	if run.Status != consent.RunPartial {
		t.Fatalf("run row = %+v", run)
	}
	sum = e.run(e.engine(opts, nil), engine.RunRequest{})
	if cs2 := connSummary(t, sum, c.BrandCode); cs2.Status != consent.RunCompleted || cs2.Accepted+cs.Accepted != 2000 {
		t.Fatalf("next run = %+v, want the rest", cs2)
	}
	st := e.sb.Admin.Stats()
	if st.Recorded != 2000 || len(st.Refused) != 0 || st.Requests[sandboxtest.RouteSubmitBulk] != 40 {
		t.Fatalf("recorded %d, refused %v, %d bulk requests: want each consent sent once", st.Recorded, st.Refused, st.Requests[sandboxtest.RouteSubmitBulk])
	}
}

// fakeIYS answers bulk requests with a verdict per consent chosen by the
// test, for the result classes the sandbox cannot produce per item.
type fakeIYS struct {
	mu      gosync.Mutex
	verdict func(c consent.Consent, try int) engine.ItemResult
	tries   map[string]int
	sent    map[string][]string // requestId → subrequest ids
	items   map[string][]consent.Consent
	n       int
}

func newFakeIYS(verdict func(consent.Consent, int) engine.ItemResult) *fakeIYS {
	return &fakeIYS{verdict: verdict, tries: map[string]int{}, sent: map[string][]string{}, items: map[string][]consent.Consent{}}
}

func (f *fakeIYS) SubmitBulk(_ context.Context, _, _ string, items []consent.Consent) (engine.Submission, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("req-%d", f.n)
	sub := engine.Submission{RequestID: id}
	for i := range items {
		sub.SubrequestIDs = append(sub.SubrequestIDs, fmt.Sprintf("%s-%d", id, i))
	}
	f.sent[id], f.items[id] = sub.SubrequestIDs, items
	return sub, nil
}

func (f *fakeIYS) BulkResults(_ context.Context, _, _, requestID string, subs []string) ([]engine.ItemResult, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	items, ok := f.items[requestID]
	if !ok {
		return nil, false, &engine.CallError{Class: consent.ClassUnknown, Message: "no such request"}
	}
	delete(f.items, requestID)
	out := make([]engine.ItemResult, len(items))
	for i, c := range items {
		f.tries[c.Recipient]++
		out[i] = f.verdict(c, f.tries[c.Recipient])
		out[i].SubrequestID = subs[i]
	}
	return out, true, nil
}

// TestItemResultsMapToStatesAndOutcomes: every class of per-item result
// lands in docs/cli.md's state and outcome; a per-item transient failure
// is retried until the budget, then fails with İYS's last code.
func TestItemResultsMapToStatesAndOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.install("MAP")
	rows := smsRows(0, 7)
	e.importRows(c, rows)
	codes := []consent.Code{"", consent.CodeSameStatus, consent.CodeFirstIsRet, consent.CodeNewerHeld,
		consent.CodeTooOld, "H999", consent.CodeBusy}
	byRecipient := map[string]consent.Code{}
	for i, r := range rows {
		byRecipient[r.Recipient] = codes[i]
	}
	f := newFakeIYS(func(cn consent.Consent, try int) engine.ItemResult {
		code := byRecipient[cn.Recipient]
		if code == "" {
			return engine.ItemResult{Class: consent.ClassAccepted, TransactionID: "tx-" + cn.Recipient}
		}
		return engine.ItemResult{Class: consent.Classify(code), Code: code, Message: fmt.Sprintf("%s try %d", code, try)}
	})
	opts := e.fastOptions()
	opts.RetryBudget = 4
	sum := e.run(e.engine(opts, f), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Accepted != 2 || cs.Rejected != 4 || cs.Retried != 3 || cs.Failed != 1 || cs.Sent != 7+3 {
		t.Fatalf("summary = %+v", cs)
	}
	want := []struct {
		state   consent.State
		outcome consent.Outcome
	}{
		{consent.StateSynced, consent.OutcomeAccepted},
		{consent.StateSynced, consent.OutcomeAlreadyInIYS},
		{consent.StateRejected, consent.OutcomeNoPriorRecord},
		{consent.StateRejected, consent.OutcomeSuperseded},
		{consent.StateRejected, consent.OutcomeTooOld},
		{consent.StateRejected, consent.OutcomeUnknown},
		{consent.StateFailed, ""},
	}
	recs := e.records(c)
	for i, w := range want {
		r := recs[key(rows[i])]
		if r.State != w.state || r.Outcome.V != w.outcome {
			t.Fatalf("%s: %s/%v, want %s/%v", codes[i], r.State, r.Outcome.V, w.state, w.outcome)
		}
		if codes[i] != "" && r.IYSCode.String != string(codes[i]) {
			t.Fatalf("%s: code %q kept, want %s", codes[i], r.IYSCode.String, codes[i])
		}
	}
	busy := recs[key(rows[6])]
	if busy.Attempts != 4 || busy.IYSMessage.String != "H123 try 4" {
		t.Fatalf("the busy record: %d tries, message %q; want 4 tries and the last message", busy.Attempts, busy.IYSMessage.String)
	}
	if r := recs[key(rows[5])]; r.IYSMessage.String != "H999 try 1" {
		t.Fatalf("an unknown code keeps its message: %q", r.IYSMessage.String)
	}
}

// TestNewValidatesOptions: bad options are refused before any work.
func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	st := (*store.Store)(nil)
	f := newFakeIYS(nil)
	for _, o := range []engine.Options{{BatchSize: 1001}, {BatchSize: -1}, {Concurrency: -2}, {RetryBudget: -1},
		{PollInitial: time.Second, PollMax: time.Millisecond}, {RetryBase: time.Hour, RetryMax: time.Minute}} {
		if _, err := engine.New(st, f, o); err == nil {
			t.Errorf("options %+v were accepted", o)
		}
	}
	if _, err := engine.New(nil, f, engine.Options{}); err == nil {
		t.Error("a nil store was accepted")
	}
	if _, err := engine.New(&store.Store{}, f, engine.Options{}); err != nil {
		t.Errorf("zero options: %v", err)
	}
}

// TestRetriesDueLaterLeaveTheRunPartial: records whose retry is not due
// within RetryWait are left for a later run, which ends partial; the
// records stay pending with their try counted.
func TestRetriesDueLaterLeaveTheRunPartial(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.install("LATER")
	rows := smsRows(0, 5)
	e.importRows(c, rows)
	f := newFakeIYS(func(cn consent.Consent, _ int) engine.ItemResult {
		if cn.Recipient == rows[0].Recipient {
			return engine.ItemResult{Class: consent.ClassTransient, Code: consent.CodeTimeout, Message: "time-out"}
		}
		return engine.ItemResult{Class: consent.ClassAccepted, TransactionID: "tx"}
	})
	opts := e.fastOptions()
	opts.RetryBase, opts.RetryMax, opts.RetryWait = time.Hour, time.Hour, time.Second
	start := time.Now()
	sum := e.run(e.engine(opts, f), engine.RunRequest{})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the run waited %v for a retry due in an hour", took)
	}
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunPartial || cs.Accepted != 4 || cs.Retried != 1 || cs.Pending != 1 || sum.Pending != 1 {
		t.Fatalf("summary = %+v, want partial with 1 record left for later", cs)
	}
	r := e.records(c)[key(rows[0])]
	if r.State != consent.StatePending || r.Attempts != 1 || r.IYSCode.String != "H192" ||
		time.Until(r.NextAttemptAt) < 40*time.Minute {
		t.Fatalf("record = %+v, want pending, 1 try, next in about an hour", r)
	}
}

// pullFirst is a Puller that notes when it was called.
type pullFirst struct {
	mu     gosync.Mutex
	calls  []string
	before int // bulk requests İYS had seen at the first pull
	e      *env
}

func (p *pullFirst) Pull(_ context.Context, c consent.ConnectorRef, runID int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		p.before = int(p.e.sb.Admin.Stats().Requests[sandboxtest.RouteSubmitBulk])
	}
	p.calls = append(p.calls, fmt.Sprintf("%s/%d", c.BrandCode, runID))
	if c.BrandCode == "PB" {
		return fmt.Errorf("İYS feed unavailable")
	}
	return nil
}

// TestPullerIsCalledFirst: the pull hook runs once per connector, before
// anything is pushed; a failed pull is reported and the push goes on.
func TestPullerIsCalledFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	a, b := e.install("PA"), e.install("PB")
	e.importRows(a, smsRows(0, 10))
	e.importRows(b, smsRows(100, 10))
	p := &pullFirst{e: e}
	opts := e.fastOptions()
	opts.Concurrency, opts.Puller = 1, p
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	ca, cb := connSummary(t, sum, "PA"), connSummary(t, sum, "PB")
	want := []string{fmt.Sprintf("PA/%d", ca.RunID), fmt.Sprintf("PB/%d", cb.RunID)}
	if fmt.Sprint(p.calls) != fmt.Sprint(want) || p.before != 0 {
		t.Fatalf("pulls %v with %d bulk requests before, want %v before any", p.calls, p.before, want)
	}
	if ca.Status != consent.RunCompleted || cb.Status != consent.RunPartial || cb.Accepted != 10 ||
		!contains(cb.Err, "pull: İYS feed unavailable") {
		t.Fatalf("summaries %+v / %+v: want PA completed, PB pushed but partial for its pull", ca, cb)
	}
}
