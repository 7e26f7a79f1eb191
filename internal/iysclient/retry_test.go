package iysclient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestRetryByStatus(t *testing.T) {
	tests := []struct {
		status    int
		retried   bool
		wantCalls int64 // API requests made, with WithMaxAttempts(3)
		wantClass consent.Class
	}{
		{400, false, 1, consent.ClassUnknown},
		{401, false, 2, consent.ClassToken}, // one re-login and one retry, then the error
		{403, false, 1, consent.ClassConfiguration},
		{404, false, 1, consent.ClassUnknown},
		{422, false, 1, consent.ClassUnknown},
		{429, true, 3, consent.ClassTransient},
		{500, true, 3, consent.ClassTransient},
		{502, true, 3, consent.ClassTransient},
		{503, true, 3, consent.ClassTransient},
		{504, true, 3, consent.ClassTransient},
		{501, false, 1, consent.ClassTransient}, // not in the retry list, still a server fault
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
				writeError(w, tt.status, "", "refused")
			})
			c := newTestClient(t, f, WithMaxAttempts(3))
			_, err := c.Brands(context.Background(), "600")
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status {
				t.Fatalf("err = %v, want an *APIError with status %d", err, tt.status)
			}
			if got := f.apiCalls.Load(); got != tt.wantCalls {
				t.Errorf("API requests = %d, want %d (retried: %v)", got, tt.wantCalls, tt.retried)
			}
			if got := ErrorClass(err); got != tt.wantClass {
				t.Errorf("class = %q, want %q", got, tt.wantClass)
			}
			wantLogins := int64(1)
			if tt.status == http.StatusUnauthorized {
				wantLogins = 2
			}
			if got := f.logins.Load(); got != wantLogins {
				t.Errorf("logins = %d, want %d", got, wantLogins)
			}
		})
	}
}

func TestRetryByCode(t *testing.T) {
	tests := []struct {
		status    int
		code      consent.Code
		wantCalls int64
		wantClass consent.Class
	}{
		{429, consent.CodeRateLimited, 3, consent.ClassTransient},
		{429, consent.CodeRateLimited2, 3, consent.ClassTransient},
		{400, consent.CodeBusy, 3, consent.ClassTransient},
		{400, consent.CodeTimeout, 3, consent.ClassTransient},
		{400, consent.CodeSameStatus, 1, consent.ClassAlreadyInIYS},
		{400, consent.CodeFirstIsRet, 1, consent.ClassNoPriorRecord},
		{400, consent.CodeNewerHeld, 1, consent.ClassSuperseded},
		{422, consent.CodeTooOld, 1, consent.ClassTooOld},
		{400, consent.CodeBefore2015, 1, consent.ClassInvalid},
		{400, consent.CodeUnknownRecipient, 1, consent.ClassInvalid},
		{400, consent.CodeDuplicateInRequest, 1, consent.ClassOurBug},
		{403, consent.CodeNotPermitted, 1, consent.ClassConfiguration},
		{400, "H999", 1, consent.ClassUnknown},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
				writeError(w, tt.status, string(tt.code), "message")
			})
			c := newTestClient(t, f, WithMaxAttempts(3))
			_, err := c.Brands(context.Background(), "600")
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tt.code {
				t.Fatalf("err = %v, want an *APIError with code %s", err, tt.code)
			}
			if got := f.apiCalls.Load(); got != tt.wantCalls {
				t.Errorf("API requests = %d, want %d", got, tt.wantCalls)
			}
			if got := apiErr.Class(); got != tt.wantClass {
				t.Errorf("class = %q, want %q", got, tt.wantClass)
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	var n atomic.Int32
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			writeError(w, http.StatusServiceUnavailable, "", "busy")
		case 2:
			writeError(w, http.StatusBadGateway, "", "proxy")
		default:
			okBrands(w, r)
		}
	})
	c := newTestClient(t, f)
	brands, err := c.Brands(context.Background(), "600")
	if err != nil {
		t.Fatalf("Brands: %v", err)
	}
	if len(brands) != 1 || brands[0].BrandCode != "700" {
		t.Errorf("brands = %+v", brands)
	}
	if got := f.apiCalls.Load(); got != 3 {
		t.Errorf("API requests = %d, want 3", got)
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	var n atomic.Int32
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close() // the connection drops with no answer
			}
			return
		}
		okBrands(w, r)
	})
	c := newTestClient(t, f)
	if _, err := c.Brands(context.Background(), "600"); err != nil {
		t.Fatalf("Brands: %v", err)
	}
	if got := f.apiCalls.Load(); got != 2 {
		t.Errorf("API requests = %d, want 2", got)
	}
}

func TestRetryBudgetKeepsLastError(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusServiceUnavailable, string(consent.CodeBusy), "busy")
	})
	c := newTestClient(t, f, WithRetry(50*time.Millisecond))
	_, err := c.Brands(context.Background(), "600")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want the last *APIError (503)", err)
	}
	if got := f.apiCalls.Load(); got < 2 {
		t.Errorf("API requests = %d, want retries", got)
	}
}

// tryTimes records when each API request arrived.
type tryTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (tt *tryTimes) add() int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.at = append(tt.at, time.Now())
	return len(tt.at)
}

func (tt *tryTimes) gap(i int) time.Duration {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.at[i].Sub(tt.at[i-1])
}

func TestRetryAfterObeyed(t *testing.T) {
	var times tryTimes
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if times.add() == 1 {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, string(consent.CodeRateLimited), "slow down")
			return
		}
		okBrands(w, r)
	})
	c := newTestClient(t, f) // backoff alone would wait about 1ms
	if _, err := c.Brands(context.Background(), "600"); err != nil {
		t.Fatalf("Brands: %v", err)
	}
	if g := times.gap(1); g < 900*time.Millisecond {
		t.Errorf("second try came %v after the first; Retry-After asked 1s", g)
	}
}

func TestRetryAfterCapped(t *testing.T) {
	var times tryTimes
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if times.add() == 1 {
			w.Header().Set("Retry-After", "3600")
			writeError(w, http.StatusServiceUnavailable, "", "maintenance")
			return
		}
		okBrands(w, r)
	})
	c := newTestClient(t, f, WithMaxRetryAfter(50*time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := c.Brands(context.Background(), "600")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Brands: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Retry-After of an hour was not capped")
	}
	if g := times.gap(1); g < 40*time.Millisecond {
		t.Errorf("second try came %v after the first, want about the 50ms cap", g)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 5, 15, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"99999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestContextCancelDuringBackoff(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
	}{
		{"exponential wait", ""},
		{"Retry-After wait", "30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := make(chan struct{})
			var once sync.Once
			f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				writeError(w, http.StatusServiceUnavailable, "", "down")
				once.Do(func() { close(first) })
			})
			// Every wait is 30s: only the cancellation can end the call soon.
			c := newTestClient(t, f, WithBackoff(30*time.Second, 30*time.Second),
				WithRetry(10*time.Minute), WithMaxRetryAfter(time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.Brands(ctx, "600")
				done <- err
			}()
			<-first
			time.Sleep(20 * time.Millisecond) // into the wait
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("returned %v after cancel", d)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("call did not return within 2s of cancel while waiting 30s")
			}
			if got := f.apiCalls.Load(); got != 1 {
				t.Errorf("API requests = %d, want 1", got)
			}
		})
	}
}

func TestContextDoneBeforeCall(t *testing.T) {
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Brands(ctx, "600"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if f.logins.Load()+f.apiCalls.Load() != 0 {
		t.Error("a request was made with a done context")
	}
}

func TestContextCancelDuringRequest(t *testing.T) {
	release := make(chan struct{})
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newTestClient(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Brands(ctx, "600")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}
