package sync_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// The kinds of record of the end-to-end data set, and what İYS must make
// of each.
type kind int

const (
	kindNew         kind = iota // ONAY with no prior record: accepted
	kindRetAfterOn              // RET after an ONAY İYS holds: accepted
	kindRetNoPrior              // RET with no prior record: H175, no_prior_record
	kindAlreadyHeld             // the very consent İYS already holds: H174, already_in_iys
)

type e2eRecord struct {
	row  store.ImportRow
	kind kind
}

var e2eSources = []consent.Source{consent.SourceWeb, consent.SourceMesaj, consent.SourceMobil,
	consent.SourceFizikselOrtam, consent.SourceCagriMerkezi, consent.SourceEposta}

// e2eData makes n records over MESAJ, ARAMA and EPOSTA, BIREYSEL and
// TACIR, ONAY and RET, dated within the last 3 business days.
func e2eData(n int, seed uint64) []e2eRecord {
	rng := rand.New(rand.NewPCG(seed, 42))
	out := make([]e2eRecord, n)
	for i := range out {
		var r store.ImportRow
		r.Line = i + 1
		switch i % 3 {
		case 0:
			r.Type, r.Recipient = consent.TypeMesaj, phone(i)
		case 1:
			r.Type, r.Recipient = consent.TypeArama, phone(i)
		default:
			r.Type, r.Recipient = consent.TypeEposta, email(i)
		}
		r.RecipientType = consent.Bireysel
		if i%7 == 0 {
			r.RecipientType = consent.Tacir
		}
		r.Source = e2eSources[rng.IntN(len(e2eSources))]
		r.ConsentDate = recentDate(rng)
		r.ExternalID = fmt.Sprintf("ext-%d", i)
		var k kind
		switch p := rng.IntN(100); {
		case p < 55:
			k = kindNew
		case p < 70:
			k = kindRetAfterOn
		case p < 85:
			k = kindRetNoPrior
		default:
			k = kindAlreadyHeld
		}
		r.Status = consent.StatusOnay
		if k == kindRetAfterOn || k == kindRetNoPrior {
			r.Status = consent.StatusRet
		}
		out[i] = e2eRecord{row: r, kind: k}
	}
	return out
}

// seedFor is what İYS must hold before the import: an earlier ONAY for
// kindRetAfterOn, the same consent for kindAlreadyHeld.
func seedFor(recs []e2eRecord) []consent.Consent {
	var out []consent.Consent
	for _, r := range recs {
		c := consent.Consent{Recipient: r.row.Recipient, RecipientType: r.row.RecipientType, Type: r.row.Type,
			Status: r.row.Status, ConsentDate: r.row.ConsentDate, Source: r.row.Source}
		switch r.kind {
		case kindRetAfterOn:
			c.Status, c.ConsentDate = consent.StatusOnay, r.row.ConsentDate.Add(-time.Minute)
		case kindAlreadyHeld:
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}

// checkE2E compares İYS's records with the import, record by record, and
// the database's outcomes with what each kind must give.
func checkE2E(t *testing.T, e *env, c store.Connector, recs []e2eRecord) {
	t.Helper()
	held := e.sb.Admin.Held(c.BrandCode)
	dbRecs := e.records(c)
	want := 0
	for _, r := range recs {
		k := key(r.row)
		got, ok := held[k]
		db := dbRecs[k]
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
			t.Fatalf("%s: İYS holds %+v, imported %+v (date %s)", k, got, r.row, r.row.ConsentDate)
		}
		switch r.kind {
		case kindAlreadyHeld:
			if db.State != consent.StateSynced || db.Outcome.V != consent.OutcomeAlreadyInIYS || db.IYSCode.String != "H174" {
				t.Fatalf("%s: db %s/%v/%s, want synced/already_in_iys/H174", k, db.State, db.Outcome.V, db.IYSCode.String)
			}
		default:
			if db.State != consent.StateSynced || db.Outcome.V != consent.OutcomeAccepted || db.TransactionID.String == "" ||
				db.TransactionID.String != got.TransactionID {
				t.Fatalf("%s: db %s/%v tx %q, want synced/accepted with İYS's transaction %q", k, db.State, db.Outcome.V,
					db.TransactionID.String, got.TransactionID)
			}
		}
		if db.Version != 1 || db.ExternalID != r.row.ExternalID {
			t.Fatalf("%s: db record %+v", k, db)
		}
	}
	if len(held) != want {
		t.Fatalf("İYS holds %d records of the brand, want %d", len(held), want)
	}
	if len(dbRecs) != len(recs) {
		t.Fatalf("%d records in the database, want %d", len(dbRecs), len(recs))
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state IN ('pending', 'in_flight', 'failed')`); n != 0 {
		t.Fatalf("%d records pending, in flight or failed, want none", n)
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state IN ('claimed', 'submitted')`); n != 0 {
		t.Fatalf("%d batches left open", n)
	}
}

func importE2E(e *env, c store.Connector, recs []e2eRecord) {
	rows := make([]store.ImportRow, len(recs))
	for i, r := range recs {
		rows[i] = r.row
	}
	e.importRows(c, rows)
}

func expectCounts(recs []e2eRecord) (accepted, rejected int) {
	for _, r := range recs {
		if r.kind == kindRetNoPrior {
			rejected++
		} else {
			accepted++
		}
	}
	return
}

// TestSyncEndToEnd: 20,000 consents imported through the real import path
// and synced to the sandbox over real HTTP; İYS ends up holding exactly
// what was imported, record by record, and every outcome is the one its
// kind must give.
func TestSyncEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.install("E2E")
	recs := e2eData(20000, 1)
	seeds := seedFor(recs)
	e.seed(c, seeds)
	importE2E(e, c, recs)
	seedRequests := e.sb.Admin.Stats().Requests[sandboxtest.RouteSubmitBulk]

	eng := e.engine(e.fastOptions(), nil)
	start := time.Now()
	sum := e.run(eng, engine.RunRequest{})
	took := time.Since(start)
	t.Logf("synced %d records in %v (%.0f records/s)", len(recs), took, float64(len(recs))/took.Seconds())

	cs := connSummary(t, sum, c.BrandCode)
	acc, rej := expectCounts(recs)
	if cs.Status != consent.RunCompleted || cs.Sent != len(recs) || cs.Accepted != acc || cs.Rejected != rej ||
		cs.Retried != 0 || cs.Failed != 0 || cs.Pending != 0 || sum.Pending != 0 || cs.Err != "" {
		t.Fatalf("summary = %+v, want completed, %d sent, %d accepted, %d rejected", cs, len(recs), acc, rej)
	}
	checkE2E(t, e, c, recs)

	st := e.sb.Admin.Stats()
	if n := st.Requests[sandboxtest.RouteSubmitBulk] - seedRequests; n != 20 {
		t.Fatalf("%d bulk requests for 20,000 consents, want 20 of 1000", n)
	}
	if st.Tokens.Logins != 1 {
		t.Fatalf("%d logins, want 1: one token shared by every batch", st.Tokens.Logins)
	}
	run, ok, err := e.st.LastRun(t.Context(), c.ID)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if run.Status != consent.RunCompleted || run.Sent != len(recs) || run.Accepted != acc || run.Rejected != rej ||
		run.Trigger != consent.TriggerRunNow || !run.FinishedAt.Valid {
		t.Fatalf("run row = %+v", run)
	}
	// Logs: one line per batch, one per run, and no recipient in clear.
	if n := e.logLines("batch finished"); n != 20 {
		t.Fatalf("%d batch lines, want 20", n)
	}
	if n := e.logLines("sync run finished"); n != 1 {
		t.Fatalf("%d run summary lines, want 1", n)
	}
	if n := e.logs.Len(); n > 100 {
		t.Fatalf("%d log entries for 20 batches: no per-record lines wanted", n)
	}
	logs := e.logText()
	for _, r := range recs[:300] {
		if contains(logs, r.row.Recipient) || contains(logs, r.row.Recipient[1:]) {
			t.Fatalf("a recipient appears in the logs: %s", consent.MaskRecipient(r.row.Recipient))
		}
	}
	// A second run finds nothing to do and sends nothing.
	sum = e.run(eng, engine.RunRequest{})
	if cs := connSummary(t, sum, c.BrandCode); cs.Status != consent.RunCompleted || cs.Sent != 0 {
		t.Fatalf("second run = %+v, want completed with nothing sent", cs)
	}
	if n := e.sb.Admin.Stats().Requests[sandboxtest.RouteSubmitBulk]; n != st.Requests[sandboxtest.RouteSubmitBulk] {
		t.Fatalf("the second run sent %d bulk requests", n-st.Requests[sandboxtest.RouteSubmitBulk])
	}
}

// TestSyncEndToEndWithFaults: the same against a sandbox that fails a fifth
// of the calls, answers slowly, throttles bulk requests and hands out
// 30-second tokens. The result must be the same, with one login (the token
// refreshed, not a login per batch).
//
// Sized at 20,000 records in batches of 250 (80 requests): with 200ms of
// latency on every call, 5 bulk requests a second and 4 in flight, it runs
// for about 20-30 s, long enough for the token to be refreshed (at half its
// life, 15 s) while keeping the package within its time.
func TestSyncEndToEndWithFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{FailRate: 0.2, Latency: 200 * time.Millisecond, BulkRate: 5,
		TokenTTL: 8 * time.Second, AsyncDelay: 300 * time.Millisecond, Seed: 7})
	c := e.install("FLT")
	recs := e2eData(20000, 2)
	// Seed through a client of its own: the faults hit it too, but its
	// logins must not count against the engine's client.
	e.seed(c, seedFor(recs))
	importE2E(e, c, recs)
	before := e.sb.Admin.Stats()

	e.client = e.newClient()
	opts := e.fastOptions()
	opts.BatchSize = 250
	// Enough workers to submit well above the sandbox's 5 a second even on
	// a loaded machine: 4 at 200 ms latency and 300 ms async delay came to
	// about 5.7 a second, and met no 429 when the machine was busy.
	opts.Concurrency = 16
	opts.PollInitial, opts.PollMax = 100*time.Millisecond, 400*time.Millisecond
	rec := &recorder{}
	opts.Observer = rec
	eng := e.engine(opts, nil)
	start := time.Now()
	sum := e.run(eng, engine.RunRequest{})
	took := time.Since(start)
	t.Logf("synced %d records through faults in %v", len(recs), took)

	cs := connSummary(t, sum, c.BrandCode)
	acc, rej := expectCounts(recs)
	if cs.Status != consent.RunCompleted || cs.Accepted != acc || cs.Rejected != rej || cs.Pending != 0 || cs.Failed != 0 {
		t.Fatalf("summary = %+v, want completed, %d accepted, %d rejected", cs, acc, rej)
	}
	checkE2E(t, e, c, recs)

	after := e.sb.Admin.Stats()
	logins := after.Tokens.Logins - before.Tokens.Logins
	refreshes := after.Tokens.Refreshes - before.Tokens.Refreshes
	faults := after.Faults - before.Faults
	throttled := after.Throttled - before.Throttled
	bulk := after.Requests[sandboxtest.RouteSubmitBulk] - before.Requests[sandboxtest.RouteSubmitBulk]
	t.Logf("bulk requests %d, faults %d, 429s %d, logins %d, refreshes %d", bulk, faults, throttled, logins, refreshes)
	if faults == 0 || throttled == 0 {
		t.Fatalf("faults %d, 429s %d: the test did not meet the faults it is about", faults, throttled)
	}
	// A login can be faulted and tried again (each try counts), and a
	// refresh can fail into a fresh login; but never one per batch.
	if logins < 1 || logins > 4 {
		t.Fatalf("%d logins for %d batches, want a handful at most", logins, len(rec.reports()))
	}
	// A renewal may fail on an injected fault while the token still holds
	// (then it is tried again later); once the token has expired, the run's
	// next call cannot go on without one that succeeds.
	if took > 12*time.Second && refreshes == 0 {
		t.Fatalf("the run took %v with 8s tokens, but no token was refreshed (a renewal may fail on a fault while the token holds; past its expiry one must succeed)", took)
	}
	if len(rec.reports()) < 80 {
		t.Fatalf("%d batch reports, want at least 80", len(rec.reports()))
	}
}
