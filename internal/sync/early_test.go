package sync_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// shiftedClock is the host's clock moved by an offset a test sets.
type shiftedClock struct{ offset atomic.Int64 }

func (c *shiftedClock) Now() time.Time        { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *shiftedClock) Shift(d time.Duration) { c.offset.Store(int64(d)) }

// datedIn makes n SMS ONAY rows dated d from now (to the second).
func datedIn(first, n int, d time.Duration) []store.ImportRow {
	rows := smsRows(first, n)
	at := consent.NewDate(time.Now().Add(d))
	for i := range rows {
		rows[i].ConsentDate = at
	}
	return rows
}

// TestEarlyStampsWaitForTheirTime: consents dated 75 s ahead of the clock
// (the import takes up to 5 minutes ahead) are not sent, not tried and not
// rejected: they wait, pending and not yet due, and the first run after
// their time sends them. The clock is driven through the engine's and the
// sandbox's Now.
func TestEarlyStampsWaitForTheirTime(t *testing.T) {
	var iysClock shiftedClock
	e := newEnv(t, sandbox.Options{Now: iysClock.Now})
	c := e.install("EARLY")
	due := smsRows(0, 10)
	early := datedIn(100, 20, 75*time.Second)
	for i := range early {
		early[i].Line = len(due) + i + 1
	}
	e.importRows(c, append(due, early...))

	sum := e.run(e.engine(e.fastOptions(), nil), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunPartial || cs.Sent != 10 || cs.Accepted != 10 || cs.Rejected != 0 || cs.Pending != 20 {
		t.Fatalf("first run = %+v, want the 10 due sent and the 20 early left pending", cs)
	}
	recs := e.records(c)
	for _, r := range early {
		got := recs[key(r)]
		if got.State != consent.StatePending || got.Attempts != 0 || got.IYSCode.Valid {
			t.Fatalf("early record = %s, %d tries, code %q; want pending, untried", got.State, got.Attempts, got.IYSCode.String)
		}
	}
	if n, err := e.st.NotYetDue(t.Context(), c.ID, time.Now()); err != nil || n != 20 {
		t.Fatalf("not yet due = %d, %v; want 20", n, err)
	}
	if n := len(e.sb.Admin.Held(c.BrandCode)); n != 10 {
		t.Fatalf("İYS holds %d, want the 10 due", n)
	}

	// 80 s on, for the engine and for İYS.
	iysClock.Shift(80 * time.Second)
	opts := e.fastOptions()
	opts.Now = iysClock.Now
	sum = e.run(e.engine(opts, nil), engine.RunRequest{})
	cs = connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Sent != 20 || cs.Accepted != 20 || cs.Pending != 0 {
		t.Fatalf("run after their time = %+v, want the 20 sent and accepted", cs)
	}
	held := e.sb.Admin.Held(c.BrandCode)
	recs = e.records(c)
	for _, r := range early {
		got := recs[key(r)]
		if got.State != consent.StateSynced || got.Attempts != 1 || held[key(r)].ConsentDate != r.ConsentDate.String() {
			t.Fatalf("early record = %s after %d tries, İYS holds %+v; want synced after 1", got.State, got.Attempts, held[key(r)])
		}
	}
}

// TestEarlyStampsWaitedForWithinTheRun: a date within the engine's
// RetryWait is waited for by the run itself, as a retry is; one further
// off is left for a later run, at once.
func TestEarlyStampsWaitedForWithinTheRun(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	soon, later := e.install("SOON"), e.install("LATER")
	e.importRows(soon, datedIn(0, 5, 2*time.Second))
	e.importRows(later, datedIn(100, 5, 40*time.Second))
	opts := e.fastOptions()
	opts.RetryWait = 10 * time.Second
	start := time.Now()
	sum := e.run(e.engine(opts, nil), engine.RunRequest{BrandCodes: []string{soon.BrandCode}})
	cs := connSummary(t, sum, soon.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Accepted != 5 || cs.Pending != 0 {
		t.Fatalf("summary = %+v, want the 5 sent once their time came", cs)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("the run took %v for consents due within 2 s", took)
	}
	start = time.Now()
	sum = e.run(e.engine(opts, nil), engine.RunRequest{BrandCodes: []string{later.BrandCode}})
	cs = connSummary(t, sum, later.BrandCode)
	if took := time.Since(start); cs.Status != consent.RunPartial || cs.Sent != 0 || cs.Pending != 5 || took > 5*time.Second {
		t.Fatalf("summary = %+v after %v, want partial at once, the 5 due in 40 s left pending", cs, took)
	}
}

// TestIYSClockBehind: İYS's clock runs a minute behind ours, so it refuses
// as H162 (in the future) consents our clock has passed. That is no
// verdict: the record goes back pending after a delay, its try counted; it
// fails when İYS keeps refusing, and goes through once İYS's clock passes
// its date.
func TestIYSClockBehind(t *testing.T) {
	var iysClock shiftedClock
	e := newEnv(t, sandbox.Options{ClockSkew: -time.Minute, Now: iysClock.Now})
	a, b := e.install("BEHIND"), e.install("BEHIND2")
	rowsA, rowsB := datedIn(0, 10, -20*time.Second), datedIn(100, 10, -20*time.Second)
	e.importRows(a, rowsA)
	e.importRows(b, rowsB)

	// A keeps being refused: it fails after its budget, never rejected.
	opts := e.fastOptions()
	opts.RetryBudget, opts.RetryWait = 2, 5*time.Second
	sum := e.run(e.engine(opts, nil), engine.RunRequest{BrandCodes: []string{a.BrandCode}})
	cs := connSummary(t, sum, a.BrandCode)
	if cs.Failed != 10 || cs.Rejected != 0 || cs.Accepted != 0 {
		t.Fatalf("A = %+v, want 10 failed after 2 tries", cs)
	}
	for _, r := range rowsA {
		if got := e.records(a)[key(r)]; got.State != consent.StateFailed || got.Attempts != 2 || got.IYSCode.String != "H162" {
			t.Fatalf("A's record = %s, %d tries, %s; want failed after 2 with H162", got.State, got.Attempts, got.IYSCode.String)
		}
	}

	// B: refused once, pending with the try counted, its retry due in a
	// minute (sooner, a slow machine would see it due within the run).
	opts = e.fastOptions()
	opts.RetryBase, opts.RetryMax, opts.RetryWait = time.Minute, time.Minute, -1
	sum = e.run(e.engine(opts, nil), engine.RunRequest{BrandCodes: []string{b.BrandCode}})
	cs = connSummary(t, sum, b.BrandCode)
	if cs.Status != consent.RunPartial || cs.Retried != 10 || cs.Rejected != 0 || cs.Pending != 10 {
		t.Fatalf("B = %+v, want 10 retried and left pending", cs)
	}
	for _, r := range rowsB {
		if got := e.records(b)[key(r)]; got.State != consent.StatePending || got.Attempts != 1 || got.IYSCode.String != "H162" {
			t.Fatalf("B's record = %s, %d tries, %s; want pending after 1 with H162", got.State, got.Attempts, got.IYSCode.String)
		}
	}

	// İYS's clock passes their date, and the minute passes: the next run
	// sends them.
	iysClock.Shift(2 * time.Minute)
	e.execSQL(`UPDATE consents SET next_attempt_at = now() WHERE connector_id = $1`, b.ID)
	sum = e.run(e.engine(opts, nil), engine.RunRequest{BrandCodes: []string{b.BrandCode}})
	cs = connSummary(t, sum, b.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Accepted != 10 || cs.Pending != 0 {
		t.Fatalf("B once İYS caught up = %+v, want 10 accepted", cs)
	}
	if n := len(e.sb.Admin.Held(b.BrandCode)); n != 10 {
		t.Fatalf("İYS holds %d of B, want 10", n)
	}
}
