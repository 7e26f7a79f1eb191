package iysclient_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

// The fates a consent of the big bulk request is built for.
type fate int

const (
	fateNewOnay  fate = iota // no record: accepted
	fateNewRet               // no record, RET: H175
	fateSame                 // ONAY held, ONAY sent: H174
	fateOlder                // ONAY held, an older RET sent: H178
	fateNewerRet             // ONAY held, a newer RET sent: accepted
	fates
)

var fateCode = [fates]consent.Code{"", consent.CodeFirstIsRet, consent.CodeSameStatus, consent.CodeNewerHeld, ""}
var fateClass = [fates]consent.Class{consent.ClassAccepted, consent.ClassNoPriorRecord, consent.ClassAlreadyInIYS,
	consent.ClassSuperseded, consent.ClassAccepted}

// TestSandboxBulkOutOfOrder sends 500 consents whose verdicts differ from
// one position to the next, and whose results İYS lists out of order with
// an index counting from 1: WaitBulk sees them enqueue first, and
// MatchResults must give every consent its own verdict.
func TestSandboxBulkOutOfOrder(t *testing.T) {
	t.Parallel()
	const n = 500
	e := startSandbox(t, sandbox.Options{AsyncDelay: 400 * time.Millisecond, Seed: 7})
	ctx := context.Background()
	c := e.client()

	rng := rand.New(rand.NewPCG(11, 12))
	fateOf := make([]fate, n)
	var priors, items []consent.Consent
	for i := range n {
		f := fate(rng.IntN(int(fates)))
		fateOf[i] = f
		p := phone(10_000 + i)
		switch f {
		case fateNewOnay:
			items = append(items, onay(p, e.clock.ago(time.Hour)))
		case fateNewRet:
			items = append(items, ret(p, e.clock.ago(time.Hour)))
		case fateSame:
			priors = append(priors, onay(p, e.clock.ago(3*time.Hour)))
			items = append(items, onay(p, e.clock.ago(time.Hour)))
		case fateOlder:
			priors = append(priors, onay(p, e.clock.ago(time.Hour)))
			items = append(items, ret(p, e.clock.ago(2*time.Hour)))
		case fateNewerRet:
			priors = append(priors, onay(p, e.clock.ago(3*time.Hour)))
			items = append(items, ret(p, e.clock.ago(time.Hour)))
		}
	}
	_, res := submitAndWait(t, c, sbBrand, priors)
	for _, r := range res {
		if r.Result.Class() != consent.ClassAccepted {
			t.Fatalf("prior %s: %+v, want accepted", r.Consent.Recipient, r.Result)
		}
	}
	held := e.admin.Held(sbBrand)

	req, err := c.SubmitBulk(ctx, sbIYS, sbBrand, items)
	if err != nil {
		t.Fatalf("SubmitBulk: %v", err)
	}
	if len(req.Items) != n {
		t.Fatalf("SubmitBulk gave %d items for %d consents", len(req.Items), n)
	}
	seen := map[string]bool{}
	for i, it := range req.Items {
		if it.Consent != items[i] || it.SubrequestID == "" || seen[it.SubrequestID] {
			t.Fatalf("item %d = %+v: want consent %+v with its own subrequestId", i, it, items[i])
		}
		seen[it.SubrequestID] = true
	}

	// Right after the submission, everything is still enqueue.
	first, err := c.BulkResults(ctx, sbIYS, sbBrand, req.RequestID)
	if err != nil {
		t.Fatalf("BulkResults: %v", err)
	}
	if len(first) != n || iysclient.BulkDone(first) {
		t.Fatalf("first poll: %d results, done %v; want %d, not done", len(first), iysclient.BulkDone(first), n)
	}
	for _, r := range first {
		if r.Status != iysclient.ResultEnqueue || r.Done() || r.Class() != consent.ClassTransient || r.TransactionID != "" || r.Error != nil {
			t.Fatalf("first poll: result %+v, want enqueue with no transaction", r)
		}
	}

	// Raw: the results are listed out of order, and index counts from 1.
	var raw []struct {
		Index        int    `json:"index"`
		SubrequestID string `json:"subrequestId"`
		Status       string `json:"status"`
	}
	e.rawJSON(http.MethodGet, "/sps/"+sbIYS+"/brands/"+sbBrand+"/consents/request/"+req.RequestID, e.rawToken(), nil, http.StatusOK, &raw)
	if len(raw) != n {
		t.Fatalf("raw poll: %d results, want %d", len(raw), n)
	}
	indexes := make([]int, n)
	inPlace := 0
	for k, r := range raw {
		indexes[k] = r.Index
		if r.Index < 1 || r.Index > n {
			t.Fatalf("raw result %d has index %d, want 1..%d", k, r.Index, n)
		}
		if r.SubrequestID != req.Items[r.Index-1].SubrequestID {
			t.Fatalf("raw result with index %d is subrequest %s, but consent %d (from 1) got %s",
				r.Index, r.SubrequestID, r.Index, req.Items[r.Index-1].SubrequestID)
		}
		if r.SubrequestID == req.Items[k].SubrequestID {
			inPlace++
		}
		if r.SubrequestID != first[k].SubrequestID || r.Index != first[k].Index {
			t.Fatalf("the client reordered İYS's list: raw %d is %+v, client has %+v", k, r, first[k])
		}
	}
	sorted := slices.Clone(indexes)
	slices.Sort(sorted)
	for i, x := range sorted {
		if x != i+1 {
			t.Fatalf("indexes are not 1..%d: sorted, position %d holds %d", n, i, x)
		}
	}
	if slices.IsSorted(indexes) || inPlace > n/10 {
		t.Fatalf("results come in submission order (%d of %d in place): this test needs them shuffled", inPlace, n)
	}

	// Wait for the verdicts.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	results, err := c.WaitBulk(wctx, sbIYS, sbBrand, req.RequestID, 25*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitBulk: %v", err)
	}
	if !iysclient.BulkDone(results) || len(results) != n {
		t.Fatalf("WaitBulk: %d results, done %v", len(results), iysclient.BulkDone(results))
	}
	for k := range results {
		if results[k].SubrequestID != raw[k].SubrequestID {
			t.Fatalf("the order changed between polls at %d", k)
		}
	}
	if polls := e.admin.Stats().Requests[sandboxtest.RoutePollBulk]; polls < 4 {
		t.Fatalf("%d polls in all, want the prior request's, the first, the raw one and at least one of WaitBulk", polls)
	}

	// Positional pairing would be wrong: results[k] is mostly not items[k]'s.
	misfits := 0
	for k, r := range results {
		if r.Class() != fateClass[fateOf[k]] {
			misfits++
		}
	}
	if misfits < n/4 {
		t.Fatalf("only %d of %d results fit their position's verdict: the test would not catch positional matching", misfits, n)
	}

	matched, err := iysclient.MatchResults(req.Items, results)
	if err != nil {
		t.Fatalf("MatchResults: %v", err)
	}
	after := e.admin.Held(sbBrand)
	counts := map[consent.Class]int{}
	for i, m := range matched {
		f := fateOf[i]
		r := m.Result
		counts[r.Class()]++
		if m.Consent != items[i] || m.SubrequestID != req.Items[i].SubrequestID || r.SubrequestID != m.SubrequestID {
			t.Fatalf("match %d pairs %+v with %+v, want consent %d", i, m.BulkItem, r, i)
		}
		if r.Index != i+1 {
			t.Fatalf("consent %d got the result with index %d, want %d", i, r.Index, i+1)
		}
		if r.Class() != fateClass[f] {
			t.Fatalf("consent %d (%s %s %s): result %s %+v, want %s", i, items[i].Recipient, items[i].Status,
				items[i].ConsentDate, r.Status, r.Error, fateClass[f])
		}
		rec, isHeld := after[recKey(items[i])]
		if fateCode[f] == "" {
			if r.Status != iysclient.ResultSuccess || r.Error != nil || r.TransactionID == "" || r.CreationDate.IsZero() {
				t.Fatalf("consent %d: accepted result %+v lacks a transaction or creation date", i, r)
			}
			if !isHeld || rec.TransactionID != r.TransactionID || rec.Status != string(items[i].Status) ||
				rec.ConsentDate != items[i].ConsentDate.String() || rec.CreationDate != r.CreationDate.String() {
				t.Fatalf("consent %d accepted as %s at %s, but İYS holds %+v", i, r.TransactionID, r.CreationDate, rec)
			}
			continue
		}
		if r.Status != iysclient.ResultFailure || r.Error == nil || r.Error.Code != fateCode[f] || r.TransactionID != "" {
			t.Fatalf("consent %d: result %+v (error %+v), want failure %s", i, r, r.Error, fateCode[f])
		}
		prior, hadPrior := held[recKey(items[i])]
		if isHeld != hadPrior || rec != prior {
			t.Fatalf("consent %d was refused (%s) but İYS's record changed from %+v to %+v", i, r.Error.Code, prior, rec)
		}
	}
	for f := range fates {
		if counts[fateClass[f]] == 0 {
			t.Fatalf("no consent of class %s: the mix is not mixed (%v)", fateClass[f], counts)
		}
	}
	t.Logf("500 results: %v, %d in submission position", counts, inPlace)
}

// TestSandboxMatchResultsRefusesForeignResults: the results of another
// request, or a request's results missing one, are not matched.
func TestSandboxMatchResultsRefusesForeignResults(t *testing.T) {
	t.Parallel()
	e := startSandbox(t, sandbox.Options{})
	c := e.client()
	a, _ := submitAndWait(t, c, sbBrand, []consent.Consent{onay(phone(1), e.clock.ago(time.Hour)), onay(phone(2), e.clock.ago(time.Hour))})
	b, _ := submitAndWait(t, c, sbBrand, []consent.Consent{onay(phone(3), e.clock.ago(time.Hour)), onay(phone(4), e.clock.ago(time.Hour))})
	ctx := context.Background()
	resB, err := c.BulkResults(ctx, sbIYS, sbBrand, b.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iysclient.MatchResults(a.Items, resB); err == nil {
		t.Fatal("MatchResults paired request A's consents with request B's results")
	}
	resA, err := c.BulkResults(ctx, sbIYS, sbBrand, a.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iysclient.MatchResults(a.Items, resA[:1]); err == nil {
		t.Fatal("MatchResults accepted a result list missing one consent")
	}
	// An unknown request id, and another brand's, are 404.
	_, err = c.BulkResults(ctx, sbIYS, "800999", a.RequestID)
	if apiErr := apiError(t, err); apiErr.Status != http.StatusNotFound || apiErr.Code != consent.CodeNotFound {
		t.Fatalf("BulkResults(another brand's request) = %v, want 404 H404", err)
	}
}
