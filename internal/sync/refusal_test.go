package sync_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// refusedAt are the rows (of smsRows(0, 5000)) whose phones İYS holds
// invalid: spread over four batches of 1000, two of them neighbours.
var refusedAt = []int{3, 998, 999, 1000, 2500, 4001, 4999}

func refusedRecipients() *regexp.Regexp {
	alts := make([]string, len(refusedAt))
	for i, n := range refusedAt {
		alts[i] = regexp.QuoteMeta(phone(n))
	}
	return regexp.MustCompile(`^(` + strings.Join(alts, "|") + `)$`)
}

// serveThrough puts handler wrap between the env's client and its sandbox.
func (e *env) serveThrough(wrap func(http.Handler) http.Handler) {
	e.sb = e.sb.Through(e.t, wrap)
	e.client = e.newClient()
}

// rewriteRefusals edits the errors of every bulk request the sandbox
// refuses, as a differently built İYS might write them.
func rewriteRefusals(t *testing.T, edit func(errs []map[string]any)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/consents/request") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if rec.Code == http.StatusBadRequest {
				var v struct {
					Errors []map[string]any `json:"errors"`
				}
				if err := json.Unmarshal(body, &v); err != nil {
					t.Errorf("refusal body %s: %v", body, err)
				}
				edit(v.Errors)
				body, _ = json.Marshal(v)
			}
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			_, _ = io.Copy(w, bytes.NewReader(body))
		})
	}
}

// bulkRequests counts the bulk requests the sandbox received.
func (e *env) bulkRequests() int {
	return int(e.sb.Admin.Stats().Requests[sandboxtest.RouteSubmitBulk])
}

// checkIsolated holds one run over 5,000 consents, 7 of them refused, to
// the outcome: completed in one run, 4,993 at İYS and accepted, the 7
// rejected invalid (H121) and nowhere at İYS, every record tried once, no
// batch left open. It returns the bulk requests beyond one per batch.
func checkIsolated(t *testing.T, e *env, c store.Connector, rows []store.ImportRow, sum engine.Summary) int {
	t.Helper()
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunCompleted || cs.Sent != 5000 || cs.Accepted != 4993 || cs.Rejected != 7 ||
		cs.Retried != 0 || cs.Failed != 0 || cs.Pending != 0 || cs.Err != "" {
		t.Fatalf("summary = %+v, want completed, 5000 sent, 4993 accepted, 7 rejected", cs)
	}
	bad := map[int]bool{}
	for _, n := range refusedAt {
		bad[n] = true
	}
	held := e.sb.Admin.Held(c.BrandCode)
	recs := e.records(c)
	if len(held) != 4993 || len(recs) != 5000 {
		t.Fatalf("İYS holds %d, the database %d records; want 4993 and 5000", len(held), len(recs))
	}
	for i, row := range rows {
		r := recs[key(row)]
		_, atIYS := held[key(row)]
		switch {
		case bad[i] && (r.State != consent.StateRejected || r.Outcome.V != consent.OutcomeInvalid ||
			r.IYSCode.String != string(consent.CodeBadPhone) || r.Attempts != 1 || atIYS):
			t.Fatalf("refused row %d = %s/%v %s, %d tries, at İYS %v; want rejected/invalid H121 after 1 try",
				i, r.State, r.Outcome.V, r.IYSCode.String, r.Attempts, atIYS)
		case !bad[i] && (r.State != consent.StateSynced || r.Outcome.V != consent.OutcomeAccepted || r.Attempts != 1 ||
			!atIYS || r.TransactionID.String != held[key(row)].TransactionID):
			t.Fatalf("row %d = %s/%v, %d tries, at İYS %v; want synced/accepted after 1 try", i, r.State, r.Outcome.V,
				r.Attempts, atIYS)
		}
	}
	if n := e.countSQL(`SELECT count(*) FROM batches WHERE state IN ('claimed', 'submitted')`); n != 0 {
		t.Fatalf("%d batches left open", n)
	}
	run, ok, err := e.st.LastRun(t.Context(), c.ID)
	if err != nil || !ok || run.Status != consent.RunCompleted || run.Sent != 5000 || run.Accepted != 4993 || run.Rejected != 7 {
		t.Fatalf("run row = %+v, %v", run, err)
	}
	return e.bulkRequests() - 5
}

// extraBound is the most bulk requests isolating the refused consents may
// add: 2 × refused × log2(batch size).
var extraBound = 2 * len(refusedAt) * int(math.Ceil(math.Log2(1000)))

// TestRefusedConsentsIsolated: İYS refuses a bulk request whole for the
// consents it holds invalid. With the errors naming them by index, each
// gets its verdict and the rest goes again at once; without indexes,
// halving finds them. Either way one run ends with every other consent at
// İYS, within the bound of extra requests.
func TestRefusedConsentsIsolated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		withIndex bool
		maxExtra  int
	}{
		{"with indexes", true, len(refusedAt)}, // at most one request sent again per refused consent
		{"without indexes", false, extraBound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Options{InvalidRecipient: refusedRecipients(), RefusalWithoutIndex: !tc.withIndex})
			c := e.install("REF")
			rows := smsRows(0, 5000)
			e.importRows(c, rows)
			start := time.Now()
			sum := e.run(e.engine(e.fastOptions(), nil), engine.RunRequest{})
			took := time.Since(start)
			extra := checkIsolated(t, e, c, rows, sum)
			t.Logf("one run in %v, %d extra bulk requests (bound %d)", took.Round(time.Millisecond), extra, tc.maxExtra)
			if extra < 1 || extra > tc.maxExtra {
				t.Fatalf("%d extra bulk requests, want 1 to %d", extra, tc.maxExtra)
			}
			refusedLines := 0
			for _, en := range e.logs.FilterMessage("batch finished").All() {
				if n, ok := en.ContextMap()["refused_records"]; ok {
					refusedLines++
					if n.(int64) < 1 {
						t.Fatalf("batch line %v", en.ContextMap())
					}
				}
			}
			// Claims made at once may interleave their records: the refused
			// consents may be in as many batches as there are of them.
			if refusedLines < 1 || refusedLines > len(refusedAt) {
				t.Fatalf("%d batch lines tell of refusals, want 1 to %d (the batches holding refused consents)",
					refusedLines, len(refusedAt))
			}
		})
	}
}

// TestRefusalIndexNotTrusted: a refusal whose indexes do not point at the
// values it echoes (an İYS counting from 0) is not trusted: halving finds
// the refused consents, and no neighbour is rejected in their place.
func TestRefusalIndexNotTrusted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{InvalidRecipient: refusedRecipients()})
	e.serveThrough(rewriteRefusals(t, func(errs []map[string]any) {
		for _, er := range errs {
			er["index"] = er["index"].(float64) - 1
		}
	}))
	c := e.install("IDX")
	rows := smsRows(0, 5000)
	e.importRows(c, rows)
	sum := e.run(e.engine(e.fastOptions(), nil), engine.RunRequest{})
	extra := checkIsolated(t, e, c, rows, sum)
	t.Logf("%d extra bulk requests (bound %d)", extra, extraBound)
	if extra <= len(refusedAt) || extra > extraBound {
		t.Fatalf("%d extra bulk requests: want the halving's, more than %d and at most %d", extra, len(refusedAt), extraBound)
	}
}

// TestRefusalNotAboutConsents: İYS refuses every bulk request whole, with a
// code of its own and no index, whatever it holds. Halving would send
// 2 × size requests and reject every consent; the engine gives up after a
// few consents refused alone with one code, counts a try, rejects nothing
// and stops the connector's run as a bug.
func TestRefusalNotAboutConsents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	var requests atomic.Int64
	e.serveThrough(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/consents/request") {
				requests.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"errors":[{"code":"H999","message":"brand suspended"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c := e.install("ALL")
	e.importRows(c, smsRows(0, 512))
	opts := e.fastOptions()
	opts.BatchSize, opts.Concurrency = 512, 1
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunFailed || !contains(cs.Err, "not about the consents") || cs.Rejected != 0 || cs.Retried != 512 {
		t.Fatalf("summary = %+v, want failed as a bug, nothing rejected, 512 retried", cs)
	}
	// The first request, both halves on the way down to one consent (9
	// levels), and the few more that find the next consents refused alone.
	const bound = 1 + 2*9 + 4
	t.Logf("%d bulk requests before giving up", requests.Load())
	if n := requests.Load(); n < 1+2*9 || n > bound {
		t.Fatalf("%d bulk requests for a batch of 512, want %d to %d", n, 1+2*9, bound)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state = 'pending' AND attempts = 1 AND iys_code = 'H999'`); n != 512 {
		t.Fatalf("%d records pending after one try with H999, want 512", n)
	}
}

// TestTransientFailureWhileIsolating: İYS fails (503) the request that
// sends again what it did not refuse. The refused consent keeps its
// verdict, the others go back to pending with their try counted, as after
// any transient failure, and the connector's run goes on; the next run
// sends them.
func TestTransientFailureWhileIsolating(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{InvalidRecipient: regexp.MustCompile(`^` + regexp.QuoteMeta(phone(7)) + `$`)})
	var posts atomic.Int64
	e.serveThrough(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/consents/request") {
				if n := posts.Add(1); n == 2 || n == 3 { // the request sent again, and the client's retry of it
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	c := e.install("TRN")
	rows := smsRows(0, 100)
	e.importRows(c, rows)
	opts := e.fastOptions()
	opts.RetryBase, opts.RetryMax, opts.RetryWait = time.Minute, time.Minute, -1
	sum := e.run(e.engine(opts, adapterOf(e, shortRetries()...)), engine.RunRequest{})
	cs := connSummary(t, sum, c.BrandCode)
	if cs.Status != consent.RunPartial || cs.Rejected != 1 || cs.Retried != 99 || cs.Accepted != 0 || cs.Err != "" {
		t.Fatalf("summary = %+v, want partial: 1 rejected, 99 retried, no error", cs)
	}
	if r := e.records(c)[key(rows[7])]; r.State != consent.StateRejected || r.IYSCode.String != "H121" {
		t.Fatalf("refused record = %s %s, want rejected H121", r.State, r.IYSCode.String)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE state = 'pending' AND attempts = 1`); n != 99 {
		t.Fatalf("%d records pending after one try, want 99", n)
	}
	e.execSQL(`UPDATE consents SET next_attempt_at = now() WHERE state = 'pending'`) // a minute on
	sum = e.run(e.engine(opts, nil), engine.RunRequest{})
	if cs := connSummary(t, sum, c.BrandCode); cs.Status != consent.RunCompleted || cs.Accepted != 99 {
		t.Fatalf("next run = %+v, want the 99 accepted", cs)
	}
}
