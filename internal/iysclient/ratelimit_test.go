package iysclient

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

func TestAdaptiveLimiterHalvesAndRecovers(t *testing.T) {
	clock := newFakeClock()
	l := newAdaptiveLimiter(10, 1, time.Minute, clock.Now, zap.NewNop())
	ctx := context.Background()
	steps := []struct {
		do   func()
		want rate.Limit
	}{
		{func() {}, 10},
		{l.Throttled, 5},
		{l.Throttled, 5}, // within a second of the cut: answers to the old rate
		{func() { clock.Add(2 * time.Second); l.Throttled() }, 2.5},
		{func() { clock.Add(30 * time.Second); _ = l.Wait(ctx) }, 2.5}, // still slow
		{func() { clock.Add(31 * time.Second); _ = l.Wait(ctx) }, 5},   // one quiet period: doubled
		{func() { clock.Add(10 * time.Second); _ = l.Wait(ctx) }, 5},
		{func() { clock.Add(time.Minute); _ = l.Wait(ctx) }, 10},
		{func() { clock.Add(time.Hour); _ = l.Wait(ctx) }, 10}, // never above the setting
	}
	for i, s := range steps {
		s.do()
		if got := l.Limit(); got != s.want {
			t.Fatalf("step %d: limit = %v, want %v", i, got, s.want)
		}
	}
}

func TestAdaptiveLimiterFloor(t *testing.T) {
	clock := newFakeClock()
	l := newAdaptiveLimiter(32, 1, time.Minute, clock.Now, zap.NewNop())
	for i := 0; i < 20; i++ {
		clock.Add(2 * time.Second)
		l.Throttled()
	}
	if got := l.Limit(); got != 1 {
		t.Errorf("limit = %v after many 429s, want the floor 1 (32/32)", got)
	}
}

func TestUnlimitedLimiter(t *testing.T) {
	l := newAdaptiveLimiter(0, 0, time.Minute, time.Now, zap.NewNop())
	l.Throttled()
	if l.Limit() != rate.Inf {
		t.Errorf("limit = %v, want unlimited", l.Limit())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx); err == nil {
		t.Error("Wait with a done context returned nil")
	}
}

// submitOne sends a one-consent bulk request: the paced call.
func submitOne(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.SubmitBulk(context.Background(), "600", "700", testConsents(t, 1)); err != nil {
		t.Fatalf("SubmitBulk: %v", err)
	}
}

// TestClientSlowsDownAfter429 submits at 20/s; after a 429 the same
// submissions must take at least twice as long.
func TestClientSlowsDownAfter429(t *testing.T) {
	var n atomic.Int32
	b := newBulkIYS()
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeError(w, http.StatusTooManyRequests, "", "slow down")
			return
		}
		b.handle(w, r)
	})
	c := newTestClient(t, f, WithRateLimit(20, 1), WithSlowdown(time.Minute))
	submitOne(t, c) // 429, then retried at the halved rate
	if got := c.limiter.Limit(); got != 10 {
		t.Fatalf("limit after a 429 = %v, want 10", got)
	}
	start := time.Now()
	for i := 0; i < 6; i++ {
		submitOne(t, c)
	}
	// 6 calls at 10/s need at least 5 gaps of 100ms (at 20/s: 250ms).
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Errorf("6 submissions after a 429 took %v, want >= 450ms at the halved rate", d)
	}
}

func TestClientPacesBulkSubmissions(t *testing.T) {
	f := newFakeIYS(t, newBulkIYS().handle)
	c := newTestClient(t, f, WithRateLimit(20, 1))
	start := time.Now()
	for i := 0; i < 5; i++ {
		submitOne(t, c)
	}
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Errorf("5 submissions at 20/s took %v, want >= 180ms", d)
	}
}

// TestClientDoesNotPaceOtherCalls: IYS_RATE_LIMIT is bulk requests per
// second; polls and queries must not wait for it, even at a slow rate.
func TestClientDoesNotPaceOtherCalls(t *testing.T) {
	b := newBulkIYS()
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/sps/600/brands/700/consents/request") {
			b.handle(w, r)
			return
		}
		okBrands(w, r)
	})
	c := newTestClient(t, f, WithRateLimit(1, 1))
	ctx := context.Background()
	req, err := c.SubmitBulk(ctx, "600", "700", testConsents(t, 2)) // takes the one token of the bucket
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 5; i++ {
		brands(t, c)
		if _, err := c.BulkResults(ctx, "600", "700", req.RequestID); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("10 unpaced calls took %v at a bulk rate of 1/s: they waited for the limiter", d)
	}
	start = time.Now()
	submitOne(t, c)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("a second submission within a second of the first took %v: it was not paced", d)
	}
}
