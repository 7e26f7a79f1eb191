package iysclient_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

// checkRecordedOnce: İYS holds exactly the sent consents, each once, and
// recorded nothing else nor refused anything (a resend would be H174).
func checkRecordedOnce(t *testing.T, e *sbEnv, sent []consent.Consent) sandboxtest.Stats {
	t.Helper()
	recs := e.admin.Held(sbBrand)
	if len(recs) != len(sent) {
		t.Fatalf("İYS holds %d records, want the %d sent", len(recs), len(sent))
	}
	for _, c := range sent {
		r, ok := recs[recKey(c)]
		if !ok || r.Status != string(c.Status) || r.ConsentDate != c.ConsentDate.String() || r.Source != string(c.Source) {
			t.Fatalf("İYS holds %+v for %s, want %s of %s", r, c.Recipient, c.Status, c.ConsentDate)
		}
	}
	s := e.admin.Stats()
	if s.Recorded != int64(len(sent)) || len(s.Refused) != 0 {
		t.Fatalf("İYS recorded %d consents and refused %v, want %d recorded once and none refused", s.Recorded, s.Refused, len(sent))
	}
	return s
}

// TestSandboxFaults: with 30% of İYS's answers a 500 or a gateway's 503
// (token endpoint included), bulk requests, concurrent polls and single
// calls of one client all get through, every consent is recorded exactly
// once, and the changes feed, read page by page, lists each once.
func TestSandboxFaults(t *testing.T) {
	t.Parallel()
	const bulks, perBulk, workers, singles = 8, 100, 4, 10
	e := startSandbox(t, sandbox.Options{FailRate: 0.3, Seed: 42, AsyncDelay: 30 * time.Millisecond})
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()

	// One at a time, the seed decides which tries fail: the same on every run.
	var sent []consent.Consent
	var reqs []*iysclient.BulkRequest
	for b := range bulks {
		items := make([]consent.Consent, perBulk)
		for i := range items {
			items[i] = onay(phone(b*1000+i), e.clock.ago(time.Hour))
		}
		req, err := c.SubmitBulk(ctx, sbIYS, sbBrand, items)
		if err != nil {
			t.Fatalf("bulk %d: SubmitBulk: %v", b, err)
		}
		reqs = append(reqs, req)
		sent = append(sent, items...)
	}
	s := e.admin.Stats()
	if s.Faults == 0 || s.Requests[sandboxtest.RouteSubmitBulk] <= bulks {
		t.Fatalf("%d faults, %d submissions for %d bulk requests: want retried submissions", s.Faults, s.Requests[sandboxtest.RouteSubmitBulk], bulks)
	}

	// Then concurrently: each worker polls two requests and adds singles.
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				for _, req := range reqs[w*bulks/workers : (w+1)*bulks/workers] {
					res, err := c.WaitBulk(ctx, sbIYS, sbBrand, req.RequestID, 10*time.Millisecond)
					if err != nil {
						return fmt.Errorf("worker %d: WaitBulk: %w", w, err)
					}
					matched, err := iysclient.MatchResults(req.Items, res)
					if err != nil {
						return fmt.Errorf("worker %d: %w", w, err)
					}
					for _, m := range matched {
						if m.Result.Class() != consent.ClassAccepted {
							return fmt.Errorf("worker %d: %s: %s %+v, want accepted", w, m.Consent.Recipient, m.Result.Status, m.Result.Error)
						}
					}
				}
				var mine []consent.Consent
				for i := range singles {
					cn := onay(phone(100_000+w*1000+i), e.clock.ago(time.Hour))
					if _, err := c.AddConsent(ctx, sbIYS, sbBrand, cn); err != nil {
						return fmt.Errorf("worker %d: AddConsent: %w", w, err)
					}
					rec, err := c.ConsentStatus(ctx, sbIYS, sbBrand, iysclient.StatusQuery{Recipient: cn.Recipient,
						RecipientType: cn.RecipientType, Type: cn.Type})
					if err != nil || rec.Status != consent.StatusOnay {
						return fmt.Errorf("worker %d: ConsentStatus = %+v, %w", w, rec, err)
					}
					mine = append(mine, cn)
				}
				mu.Lock()
				sent = append(sent, mine...)
				mu.Unlock()
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	s = checkRecordedOnce(t, e, sent)
	if s.Requests[sandboxtest.RouteAddConsent] <= workers*singles || s.Requests[sandboxtest.RoutePollBulk] <= bulks {
		t.Fatalf("%d adds for %d consents, %d polls for %d requests: nothing was retried", s.Requests[sandboxtest.RouteAddConsent],
			workers*singles, s.Requests[sandboxtest.RoutePollBulk], bulks)
	}
	if s.Tokens.Logins != 1 || s.Unauthorized != 0 {
		t.Fatalf("%d logins, %d 401s: want one login shared, also when the token endpoint fails", s.Tokens.Logins, s.Unauthorized)
	}

	// The brand's feed, 100 at a time through the faults: each consent once.
	listed := map[string]int{}
	after := ""
	for page := 0; ; page++ {
		p, err := c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: iysclient.ChangesByBrand, After: after, Limit: 100})
		if err != nil {
			t.Fatalf("Changes page %d: %v", page, err)
		}
		if len(p.Entries) == 0 {
			break
		}
		if page > len(sent)/100+1 {
			t.Fatalf("the feed goes on past page %d", page)
		}
		for _, r := range entries(t, p.Entries) {
			listed[sandboxtest.Key(r.Recipient, r.RecipientType, r.Type)]++
		}
		after = p.After
	}
	if len(listed) != len(sent) {
		t.Fatalf("the feed lists %d records, want %d", len(listed), len(sent))
	}
	for _, cn := range sent {
		if listed[recKey(cn)] != 1 {
			t.Fatalf("the feed lists %s %d times, want once", cn.Recipient, listed[recKey(cn)])
		}
	}
	t.Logf("faults %d, requests %v", e.admin.Stats().Faults, e.admin.Stats().Requests)
}

// TestSandboxThrottled: beyond İYS's bulk rate the client gets 429 with
// H083/H124 and Retry-After, waits what it is told (capped for the test),
// and records every consent exactly once.
func TestSandboxThrottled(t *testing.T) {
	const bulks, perBulk = 10, 20
	const rate = 5 // bulk requests per second, a burst of 5
	e := startSandbox(t, sandbox.Options{BulkRate: rate, Seed: 3})
	// Retry-After is whole seconds (1 here); capped at 250 ms, after which
	// the bucket has refilled more than one request. Were Retry-After
	// ignored, the 2 ms backoff would meet a 429 again and again.
	c := e.client(iysclient.WithMaxRetryAfter(250 * time.Millisecond))
	ctx := context.Background()

	var sent []consent.Consent
	for b := range bulks {
		items := make([]consent.Consent, perBulk)
		for i := range items {
			items[i] = onay(phone(b*100+i), e.clock.ago(time.Hour))
		}
		_, res := submitAndWait(t, c, sbBrand, items)
		for _, r := range res {
			if r.Result.Class() != consent.ClassAccepted {
				t.Fatalf("bulk %d: %s: %+v, want accepted", b, r.Consent.Recipient, r.Result)
			}
		}
		sent = append(sent, items...)
	}
	s := checkRecordedOnce(t, e, sent)
	if s.Throttled == 0 {
		t.Fatalf("no 429 for %d bulk requests at %d/s: the test proves nothing", bulks, rate)
	}
	if s.Throttled > bulks-rate+1 {
		t.Fatalf("%d 429s for %d bulk requests beyond a burst of %d: the client does not wait Retry-After", s.Throttled, bulks, rate)
	}
	if got := s.Requests[sandboxtest.RouteSubmitBulk]; got != bulks+s.Throttled {
		t.Fatalf("%d submissions: want %d bulk requests plus one retry per 429 (%d)", got, bulks, s.Throttled)
	}

	// Without retries, the client surfaces the 429 as transient.
	once := e.client(iysclient.WithMaxAttempts(1))
	var lastErr error
	for i := range rate + 2 {
		if _, err := once.SubmitBulk(ctx, sbIYS, sbBrand, []consent.Consent{onay(phone(9000+i), e.clock.ago(time.Hour))}); err != nil {
			lastErr = err
			break
		}
	}
	apiErr := apiError(t, lastErr)
	if apiErr.Status != 429 || (apiErr.Code != consent.CodeRateLimited && apiErr.Code != consent.CodeRateLimited2) ||
		apiErr.Class() != consent.ClassTransient || apiErr.RetryAfter < time.Second {
		t.Fatalf("throttled bulk request: %v (Retry-After %v), want 429 H083/H124, transient, Retry-After >= 1s", lastErr, apiErr.RetryAfter)
	}
}

// TestSandboxTokenRefresh: with 2 s tokens, calls running for longer than
// a token's life go on working: the client refreshes before expiry (one
// login, refreshes, never a 401).
func TestSandboxTokenRefresh(t *testing.T) {
	const workers = 3
	e := startSandbox(t, sandbox.Options{TokenTTL: 2 * time.Second})
	c := e.client(iysclient.WithRefreshMargin(time.Second))
	ctx := context.Background()

	mustAdd(t, c, sbBrand, onay(phone(0), e.clock.ago(time.Hour)))
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	calls := make([]int, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; time.Since(start) < 2800*time.Millisecond; n++ {
				cn := onay(phone(w*100_000+n), e.clock.ago(time.Hour))
				if _, err := c.AddConsent(ctx, sbIYS, sbBrand, cn); err != nil {
					errs <- fmt.Errorf("worker %d, call %d at %v: %w", w, n, time.Since(start), err)
					return
				}
				if _, err := c.ConsentStatus(ctx, sbIYS, sbBrand, iysclient.StatusQuery{Recipient: cn.Recipient,
					RecipientType: cn.RecipientType, Type: cn.Type}); err != nil {
					errs <- fmt.Errorf("worker %d, status %d at %v: %w", w, n, time.Since(start), err)
					return
				}
				calls[w] = n
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := e.admin.Stats()
	if s.Tokens.Logins != 1 || s.Tokens.Refreshes < 2 || s.Unauthorized != 0 {
		t.Fatalf("over %v with 2 s tokens: %d logins, %d refreshes, %d 401s; want 1 login, >= 2 refreshes, no 401",
			time.Since(start), s.Tokens.Logins, s.Tokens.Refreshes, s.Unauthorized)
	}
	total := 1
	for _, n := range calls {
		total += n
	}
	if s.Recorded != int64(total) {
		t.Fatalf("recorded %d, want %d", s.Recorded, total)
	}
	t.Logf("%d calls, %d refreshes", total, s.Tokens.Refreshes)
}

// TestSandboxTokenExpiredMidRun: when İYS refuses a token the client still
// thinks good (its clock and İYS's disagree), the call logs in again once
// and goes on; a token whose refresh token also expired needs a login too.
func TestSandboxTokenExpiredMidRun(t *testing.T) {
	e := startSandbox(t, sandbox.Options{})
	c := e.client()
	ctx := context.Background()
	mustAdd(t, c, sbBrand, onay(phone(1), e.clock.ago(time.Hour)))

	e.clock.Jump(3 * time.Hour) // past the access token (2 h), not the refresh token (4 h)
	mustAdd(t, c, sbBrand, onay(phone(2), e.clock.ago(time.Hour)))
	s := e.admin.Stats()
	if s.Tokens.Logins != 2 || s.Tokens.Refreshes != 0 || s.Unauthorized != 1 {
		t.Fatalf("after İYS expired the token: %d logins, %d refreshes, %d 401s; want one 401 and one new login",
			s.Tokens.Logins, s.Tokens.Refreshes, s.Unauthorized)
	}
	if n := s.Requests[sandboxtest.RouteAddConsent]; n != 3 {
		t.Fatalf("%d adds for 2 consents: want the refused one sent again once", n)
	}

	e.clock.Jump(5 * time.Hour)
	rec, err := c.ConsentStatus(ctx, sbIYS, sbBrand, iysclient.StatusQuery{Recipient: phone(2),
		RecipientType: consent.Bireysel, Type: consent.TypeMesaj})
	if err != nil || rec.Status != consent.StatusOnay {
		t.Fatalf("ConsentStatus after a second expiry = %+v, %v", rec, err)
	}
	if s := e.admin.Stats(); s.Tokens.Logins != 3 || s.Unauthorized != 2 {
		t.Fatalf("after a second expiry: %d logins, %d 401s; want 3 and 2", s.Tokens.Logins, s.Unauthorized)
	}
}

// TestSandboxLoginLimit: past İYS's hourly login cap (429 H084) a client
// stops logging in for the pause and fails fast, while a client holding a
// token goes on.
func TestSandboxLoginLimit(t *testing.T) {
	e := startSandbox(t, sandbox.Options{LoginLimit: 1})
	ctx := context.Background()
	a := e.client()
	mustAdd(t, a, sbBrand, onay(phone(1), e.clock.ago(time.Hour)))

	b := e.client(iysclient.WithLoginPause(time.Hour))
	for i := range 3 {
		_, err := b.Brands(ctx, sbIYS)
		var paused *iysclient.LoginPausedError
		if !errors.As(err, &paused) || iysclient.ErrorClass(err) != consent.ClassLoginLimit {
			t.Fatalf("call %d past the login cap: %v (class %s), want a login pause", i, err, iysclient.ErrorClass(err))
		}
		if d := time.Until(paused.Until); d < 59*time.Minute {
			t.Fatalf("login paused for %v, want about an hour", d)
		}
		if i == 0 {
			apiErr := apiError(t, err)
			if apiErr.Status != 429 || apiErr.Code != consent.CodeLoginLimit || apiErr.RetryAfter <= 0 {
				t.Fatalf("login cap: %v, want 429 H084 with Retry-After", err)
			}
		}
	}
	s := e.admin.Stats()
	if n := s.Requests[sandboxtest.RouteToken]; n != 2 {
		t.Fatalf("%d token requests, want 2: the paused client must not try again", n)
	}
	if _, ok := s.Requests["GET /sps/{iysCode}/brands"]; ok {
		t.Fatal("the paused client called İYS without a token")
	}
	mustAdd(t, a, sbBrand, onay(phone(2), e.clock.ago(time.Hour)))
}
