package iysclient_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

// exchanges collects what the client's observer hears.
type exchanges struct {
	mu   sync.Mutex
	list []iysclient.Exchange
}

func (x *exchanges) observe(e iysclient.Exchange) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.list = append(x.list, e)
}

// count is the number of exchanges per endpoint and per result.
func (x *exchanges) count() (byEndpoint, byResult map[string]int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	byEndpoint, byResult = map[string]int64{}, map[string]int64{}
	for _, e := range x.list {
		byEndpoint[e.Endpoint]++
		byResult[e.Result]++
	}
	return byEndpoint, byResult
}

// TestObserverHearsEveryExchange: against a sandbox that fails 30% of its
// answers and throttles bulk requests, the observer hears one exchange per
// HTTP request the sandbox received, per endpoint (each try and each login
// counted, successes too), each with the result İYS gave: the sandbox's
// own counts of 5xx, 429 and 403 answers, two refusals, and ok for the rest.
func TestObserverHearsEveryExchange(t *testing.T) {
	const denied = "800199"
	e := startSandbox(t, sandbox.Options{FailRate: 0.3, BulkRate: 3, Seed: 11, DenyBrands: []string{denied}})
	var x exchanges
	c := e.client(iysclient.WithObserver(x.observe), iysclient.WithMaxRetryAfter(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for b := range 6 {
		items := make([]consent.Consent, 10)
		for i := range items {
			items[i] = onay(phone(b*100+i), e.clock.ago(time.Hour))
		}
		submitAndWait(t, c, sbBrand, items)
	}
	// A consent a month old: İYS refuses it (a 4xx verdict).
	_, err := c.AddConsent(ctx, sbIYS, sbBrand, onay(phone(9001), e.clock.ago(30*24*time.Hour)))
	wantAPIError(t, "a month-old consent", err, http.StatusBadRequest, consent.CodeTooOld, consent.ClassTooOld)
	// No record: a 404.
	if _, err := c.ConsentStatus(ctx, sbIYS, sbBrand, iysclient.StatusQuery{Recipient: phone(9002),
		RecipientType: consent.Bireysel, Type: consent.TypeMesaj}); !errors.Is(err, iysclient.ErrNoRecord) {
		t.Fatalf("ConsentStatus of an unknown recipient: %v, want ErrNoRecord", err)
	}
	// A brand without rights: 403.
	if _, err := c.SubmitBulk(ctx, sbIYS, denied, []consent.Consent{onay(phone(9003), e.clock.ago(time.Hour))}); err == nil {
		t.Fatal("a bulk request for a brand without rights was accepted")
	}

	s := e.admin.Stats()
	byEndpoint, byResult := x.count()
	for endpoint, route := range map[string]string{
		iysclient.EndpointToken: sandboxtest.RouteToken,
		"submit_bulk":           sandboxtest.RouteSubmitBulk,
		"bulk_results":          sandboxtest.RoutePollBulk,
		"add_consent":           sandboxtest.RouteAddConsent,
		"consent_status":        "POST /sps/{iysCode}/brands/{brandCode}/consents/status",
	} {
		if byEndpoint[endpoint] != s.Requests[route] || byEndpoint[endpoint] == 0 {
			t.Errorf("%s: observed %d exchanges, the sandbox received %d requests", endpoint, byEndpoint[endpoint], s.Requests[route])
		}
	}
	if len(byEndpoint) != 5 {
		t.Errorf("endpoints observed: %v, want the 5 kinds of call made", byEndpoint)
	}
	var total int64
	for _, n := range s.Requests {
		total += n
	}
	if s.Faults == 0 || s.Throttled == 0 {
		t.Fatalf("the sandbox injected %d faults and %d 429s: the test proves nothing", s.Faults, s.Throttled)
	}
	want := map[string]int64{
		iysclient.ResultTransient: s.Faults,
		iysclient.ResultThrottled: s.Throttled,
		iysclient.ResultAuth:      s.Forbidden,
		iysclient.ResultRefused:   2,
	}
	want[iysclient.ResultOK] = total - s.Faults - s.Throttled - s.Forbidden - 2
	for r, n := range want {
		if byResult[r] != n {
			t.Errorf("result %s: observed %d, want %d (all: %v; sandbox %+v)", r, byResult[r], n, byResult, s)
		}
	}
	if len(byResult) != len(want) {
		t.Errorf("results observed: %v, want only %v", byResult, want)
	}
	for _, ex := range x.list {
		if ex.Duration <= 0 || ex.Duration > 10*time.Second {
			t.Fatalf("exchange %+v: duration not that of one request", ex)
		}
	}
}

// Endpoint names are a fixed set: never a path with codes or ids in it.
func TestObserverEndpointsAreFixedNames(t *testing.T) {
	e := startSandbox(t, sandbox.Options{})
	var x exchanges
	c := e.client(iysclient.WithObserver(x.observe))
	ctx := context.Background()
	submitAndWait(t, c, sbBrand, []consent.Consent{onay(phone(1), e.clock.ago(time.Hour))})
	e.citizen(sbBrand, phone(2), consent.TypeMesaj, consent.StatusRet, consent.SourceIYSWeb)
	if _, err := c.Changes(ctx, sbIYS, sbBrand, iysclient.ChangesQuery{Source: iysclient.ChangesByCitizens}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Brands(ctx, sbIYS); err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	byEndpoint, _ := x.count()
	for endpoint := range byEndpoint {
		if !name.MatchString(endpoint) {
			t.Errorf("endpoint %q is not a fixed name", endpoint)
		}
	}
	for _, want := range []string{"token", "submit_bulk", "bulk_results", "changes", "brands"} {
		if byEndpoint[want] == 0 {
			t.Errorf("no exchange observed for %s: %v", want, byEndpoint)
		}
	}
}

func TestWithObserverRefusesNil(t *testing.T) {
	if _, err := iysclient.New("https://api.iys.org.tr", iysclient.Credentials{Username: "u", Password: "p"},
		iysclient.WithObserver(nil)); err == nil {
		t.Fatal("WithObserver(nil) accepted")
	}
}
