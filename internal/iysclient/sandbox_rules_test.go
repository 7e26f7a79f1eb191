package iysclient_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

// ruleCase is one of İYS's rules, broken by one consent: prior is recorded
// first (when set), then broken is sent.
type ruleCase struct {
	name   string
	prior  *consent.Consent
	broken consent.Consent
	code   consent.Code
	status int // of the single call's refusal
	class  consent.Class
}

// ruleCases builds the cases for recipients numbered from base up, so that
// the single and the bulk run use distinct records.
func ruleCases(clk *sbClock, base int) []ruleCase {
	d := func(s string) consent.Date {
		v, err := consent.ParseDate(s)
		if err != nil {
			panic(err)
		}
		return v
	}
	hs2015 := onay(phone(base+2), d("2016-01-01 00:00:00"))
	hs2015.Source = consent.Source2015
	prior174 := onay(phone(base+4), clk.ago(3*time.Hour))
	prior178 := onay(phone(base+5), clk.ago(time.Hour))
	return []ruleCase{
		{"H155 before 2015-05-01", nil, onay(phone(base), d("2015-04-30 23:59:59")),
			consent.CodeBefore2015, http.StatusUnprocessableEntity, consent.ClassInvalid},
		{"H162 in the future", nil, onay(phone(base+1), clk.ago(-24*time.Hour)),
			consent.CodeFutureDate, http.StatusUnprocessableEntity, consent.ClassInvalid},
		{"H156 HS_2015 not on 2015-05-01", nil, hs2015,
			consent.CodeBadHS2015Date, http.StatusUnprocessableEntity, consent.ClassInvalid},
		{"H175 first record is RET", nil, ret(phone(base+3), clk.ago(time.Hour)),
			consent.CodeFirstIsRet, http.StatusBadRequest, consent.ClassNoPriorRecord},
		{"H174 same status again", &prior174, onay(phone(base+4), clk.ago(time.Hour)),
			consent.CodeSameStatus, http.StatusBadRequest, consent.ClassAlreadyInIYS},
		{"H178 older than the one held", &prior178, ret(phone(base+5), clk.ago(2*time.Hour)),
			consent.CodeNewerHeld, http.StatusBadRequest, consent.ClassSuperseded},
		{"H467 more than 3 business days ago", nil, onay(phone(base+6), clk.ago(30*24*time.Hour)),
			consent.CodeTooOld, http.StatusBadRequest, consent.ClassTooOld},
	}
}

// TestSandboxRuleCodes: each İYS rule's code as the client surfaces it, from
// a single call (an *APIError with its status, code and class, not retried)
// and as a bulk item's result (a failure with the code and class), while
// İYS keeps what it held.
func TestSandboxRuleCodes(t *testing.T) {
	t.Parallel()
	e := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	c := e.client()

	t.Run("single", func(t *testing.T) {
		cases := ruleCases(e.clock, 100)
		for _, tc := range cases {
			if tc.prior != nil {
				mustAdd(t, c, sbBrand, *tc.prior)
			}
		}
		for _, tc := range cases {
			before := e.admin.Stats()
			_, err := c.AddConsent(ctx, sbIYS, sbBrand, tc.broken)
			wantAPIError(t, tc.name, err, tc.status, tc.code, tc.class)
			apiErr := apiError(t, err)
			if len(apiErr.Errors) != 1 || apiErr.Errors[0].Class() != tc.class || apiErr.Message == "" {
				t.Fatalf("%s: errors %+v, want one entry of class %s with a message", tc.name, apiErr.Errors, tc.class)
			}
			after := e.admin.Stats()
			if n := after.Requests[sandboxtest.RouteAddConsent] - before.Requests[sandboxtest.RouteAddConsent]; n != 1 {
				t.Fatalf("%s: sent %d times, want once: a verdict is not retried", tc.name, n)
			}
			if n := after.Refused[tc.code] - before.Refused[tc.code]; n != 1 {
				t.Fatalf("%s: the sandbox counted %d refusals with %s, want 1", tc.name, n, tc.code)
			}
		}
		checkKept(t, e, cases)
	})

	t.Run("bulk", func(t *testing.T) {
		cases := ruleCases(e.clock, 200)
		var priors, items []consent.Consent
		for _, tc := range cases {
			if tc.prior != nil {
				priors = append(priors, *tc.prior)
			}
			items = append(items, tc.broken)
		}
		// One consent that is fine, between the broken ones.
		good := onay(phone(299), e.clock.ago(time.Hour))
		items = append(items[:3:3], append([]consent.Consent{good}, items[3:]...)...)

		_, res := submitAndWait(t, c, sbBrand, priors)
		for _, r := range res {
			if r.Result.Class() != consent.ClassAccepted {
				t.Fatalf("prior %s: %s %+v, want accepted", r.Consent.Recipient, r.Result.Status, r.Result.Error)
			}
		}
		_, res = submitAndWait(t, c, sbBrand, items)
		if len(res) != len(items) {
			t.Fatalf("%d results for %d consents", len(res), len(items))
		}
		byRecipient := map[string]iysclient.ItemResult{}
		for _, r := range res {
			byRecipient[r.Consent.Recipient] = r
		}
		for _, tc := range cases {
			r := byRecipient[tc.broken.Recipient]
			if r.Result.Status != iysclient.ResultFailure || r.Result.Error == nil ||
				r.Result.Error.Code != tc.code || r.Result.Class() != tc.class || r.Result.Error.Class() != tc.class {
				t.Fatalf("%s: bulk result %+v (error %+v), want failure %s class %s", tc.name, r.Result, r.Result.Error, tc.code, tc.class)
			}
			if r.Result.TransactionID != "" {
				t.Fatalf("%s: a refused item has transaction id %q", tc.name, r.Result.TransactionID)
			}
		}
		if r := byRecipient[good.Recipient]; r.Result.Class() != consent.ClassAccepted || r.Result.TransactionID == "" {
			t.Fatalf("the good consent among the broken ones: %+v, want accepted with a transaction", r.Result)
		}
		checkKept(t, e, cases)
		if recs := e.admin.Held(sbBrand); recs[recKey(good)].Status != "ONAY" {
			t.Fatalf("the good consent is not recorded: %+v", recs[recKey(good)])
		}
	})
}

// checkKept: a refused consent changes nothing at İYS.
func checkKept(t *testing.T, e *sbEnv, cases []ruleCase) {
	t.Helper()
	recs := e.admin.Held(sbBrand)
	for _, tc := range cases {
		r, held := recs[recKey(tc.broken)]
		switch {
		case tc.prior == nil && held:
			t.Fatalf("%s: İYS holds %+v, want nothing", tc.name, r)
		case tc.prior != nil && (!held || r.Status != string(tc.prior.Status) || r.ConsentDate != tc.prior.ConsentDate.String()):
			t.Fatalf("%s: İYS holds %+v, want the prior %s of %s", tc.name, r, tc.prior.Status, tc.prior.ConsentDate)
		}
	}
}

// TestSandboxBulkRefusedWhole: what the client refuses to send (more than
// 1000 consents, one key twice, none) the sandbox refuses too, whole, with
// İYS's codes H125 and H194, so that both sides agree on the limits.
func TestSandboxBulkRefusedWhole(t *testing.T) {
	t.Parallel()
	e := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	c := e.client()
	d := e.clock.ago(time.Hour)

	many := make([]consent.Consent, consent.MaxBulkSize+1)
	for i := range many {
		many[i] = onay(phone(i), d)
	}
	dupPhone := []consent.Consent{onay(phone(1), d), onay(phone(2), d), ret(phone(1), d)}
	mail := func(addr string) consent.Consent {
		return consent.Consent{Recipient: addr, RecipientType: consent.Bireysel, Type: consent.TypeEposta,
			Status: consent.StatusOnay, ConsentDate: d, Source: consent.SourceEposta}
	}
	dupMail := []consent.Consent{mail("veli@example.com"), mail("Veli@Example.com")}
	// The same recipient under another type or recipient type is no repeat.
	notDup := []consent.Consent{onay(phone(5000), d), onay(phone(5000), d), onay(phone(5000), d)}
	notDup[1].Type = consent.TypeArama
	notDup[2].RecipientType = consent.Tacir

	for _, tc := range []struct {
		name  string
		items []consent.Consent
		err   error
		code  consent.Code
		index int // of the refused item, from 1; 0 when none
	}{
		{"1001 consents", many, iysclient.ErrBulkSize, consent.CodeTooMany, 0},
		{"a phone twice", dupPhone, iysclient.ErrDuplicateKey, consent.CodeDuplicateInRequest, 3},
		{"an email twice, in another case", dupMail, iysclient.ErrDuplicateKey, consent.CodeDuplicateInRequest, 2},
	} {
		before := e.admin.Stats().Requests[sandboxtest.RouteSubmitBulk]
		_, err := c.SubmitBulk(ctx, sbIYS, sbBrand, tc.items)
		if !errors.Is(err, tc.err) || iysclient.ErrorClass(err) != consent.ClassOurBug {
			t.Fatalf("%s: SubmitBulk = %v (class %s), want %v, our bug", tc.name, err, iysclient.ErrorClass(err), tc.err)
		}
		if n := e.admin.Stats().Requests[sandboxtest.RouteSubmitBulk] - before; n != 0 {
			t.Fatalf("%s: the client sent it (%d requests)", tc.name, n)
		}

		var answer struct {
			Errors []struct {
				Code  consent.Code `json:"code"`
				Index int          `json:"index"`
			} `json:"errors"`
		}
		e.rawJSON(http.MethodPost, "/sps/"+sbIYS+"/brands/"+sbBrand+"/consents/request", e.rawToken(), tc.items,
			http.StatusBadRequest, &answer)
		if len(answer.Errors) != 1 || answer.Errors[0].Code != tc.code || answer.Errors[0].Index != tc.index {
			t.Fatalf("%s: İYS answered %+v, want one error %s at index %d", tc.name, answer.Errors, tc.code, tc.index)
		}
		if consent.Classify(tc.code) != consent.ClassOurBug {
			t.Fatalf("%s: %s is not classified as our bug", tc.name, tc.code)
		}
	}
	if _, err := c.SubmitBulk(ctx, sbIYS, sbBrand, nil); !errors.Is(err, iysclient.ErrBulkSize) {
		t.Fatalf("SubmitBulk(none) = %v, want ErrBulkSize", err)
	}
	if n := len(e.admin.Held(sbBrand)); n != 0 {
		t.Fatalf("refused requests recorded %d consents", n)
	}

	// Exactly 1000 pass, and the not-repeated keys too.
	_, res := submitAndWait(t, c, sbBrand, many[:consent.MaxBulkSize])
	_, res2 := submitAndWait(t, c, sbBrand, notDup)
	for _, r := range append(res, res2...) {
		if r.Result.Class() != consent.ClassAccepted {
			t.Fatalf("%s %s %s: %s %+v, want accepted", r.Consent.Recipient, r.Consent.RecipientType, r.Consent.Type,
				r.Result.Status, r.Result.Error)
		}
	}
	if n := len(e.admin.Held(sbBrand)); n != consent.MaxBulkSize+3 {
		t.Fatalf("İYS holds %d records, want %d", n, consent.MaxBulkSize+3)
	}
	if s := e.admin.Stats(); s.Recorded != consent.MaxBulkSize+3 {
		t.Fatalf("recorded %d, want %d", s.Recorded, consent.MaxBulkSize+3)
	}
}
