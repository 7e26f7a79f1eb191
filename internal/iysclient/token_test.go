package iysclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func brands(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Brands(context.Background(), "600"); err != nil {
		t.Fatalf("Brands: %v", err)
	}
}

func wantCounts(t *testing.T, f *fakeIYS, logins, refreshes, api int64) {
	t.Helper()
	if got := f.logins.Load(); got != logins {
		t.Errorf("logins = %d, want %d", got, logins)
	}
	if got := f.refreshes.Load(); got != refreshes {
		t.Errorf("refreshes = %d, want %d", got, refreshes)
	}
	if got := f.apiCalls.Load(); got != api {
		t.Errorf("API requests = %d, want %d", got, api)
	}
}

func TestTokenReusedThenRefreshedBeforeExpiry(t *testing.T) {
	clock := newFakeClock()
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f, WithClock(clock.Now), WithRefreshMargin(5*time.Minute))

	brands(t, c)
	brands(t, c)
	wantCounts(t, f, 1, 0, 2) // one login for both calls

	clock.Add(2*time.Hour - 6*time.Minute) // not yet in the margin
	brands(t, c)
	wantCounts(t, f, 1, 0, 3)

	clock.Add(2 * time.Minute) // 4 minutes before expiry: refresh, no login
	brands(t, c)
	wantCounts(t, f, 1, 1, 4)
}

func TestShortLivedTokenMarginCapped(t *testing.T) {
	clock := newFakeClock()
	f := newFakeIYS(t, okBrands)
	f.expiresIn = 60 // a 5-minute margin would refresh on every call
	c := newTestClient(t, f, WithClock(clock.Now), WithRefreshMargin(5*time.Minute))
	brands(t, c)
	clock.Add(29 * time.Second)
	brands(t, c)
	wantCounts(t, f, 1, 0, 2)
	clock.Add(2 * time.Second) // past half the lifetime
	brands(t, c)
	wantCounts(t, f, 1, 1, 3)
}

func TestExpiredRefreshTokenMeansLogin(t *testing.T) {
	clock := newFakeClock()
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f, WithClock(clock.Now))
	brands(t, c)
	clock.Add(5 * time.Hour) // past refresh_expires_in (4h)
	brands(t, c)
	wantCounts(t, f, 2, 0, 2)
}

func TestRefusedRefreshFallsBackToLogin(t *testing.T) {
	clock := newFakeClock()
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f, WithClock(clock.Now))
	brands(t, c)
	f.mu.Lock()
	f.refreshable = map[string]bool{} // İYS forgot the refresh token
	f.mu.Unlock()
	clock.Add(2*time.Hour - time.Minute)
	brands(t, c)
	wantCounts(t, f, 2, 1, 2)
}

func TestServerExpiresTokenMidRun(t *testing.T) {
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f)
	brands(t, c)
	f.expireTokens() // İYS drops the token before its expires_in
	brands(t, c)
	// The 401 costs one re-login and one retry of the call.
	wantCounts(t, f, 2, 0, 3)
	brands(t, c)
	wantCounts(t, f, 2, 0, 4)
}

func TestSecond401IsReturned(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusUnauthorized, string(consent.CodeBadToken), "token rejected")
	})
	c := newTestClient(t, f)
	_, err := c.Brands(context.Background(), "600")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want the second 401", err)
	}
	if apiErr.Class() != consent.ClassToken {
		t.Errorf("class = %q, want token", apiErr.Class())
	}
	wantCounts(t, f, 2, 0, 2)
}

func TestOneReloginPerCall(t *testing.T) {
	var n atomic.Int32
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1, 3:
			writeError(w, http.StatusUnauthorized, string(consent.CodeBadToken), "token rejected")
		case 2:
			writeError(w, http.StatusServiceUnavailable, "", "busy")
		default:
			okBrands(w, r)
		}
	})
	c := newTestClient(t, f)
	// 401 → re-login → 503 → backoff → 401: the call has had its re-login.
	_, err := c.Brands(context.Background(), "600")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want the 401", err)
	}
	wantCounts(t, f, 2, 0, 3)
}

func TestTokenAnswerSpellings(t *testing.T) {
	f := newFakeIYS(t, okBrands)
	f.tokenHook = func(w http.ResponseWriter, _ string) bool {
		f.mu.Lock()
		f.valid["odd-token"] = true
		f.mu.Unlock()
		// tokenType instead of token_type, lifetimes as strings.
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "odd-token", "refresh_token": "r",
			"expires_in": "7200", "refresh_expires_in": "14400", "tokenType": "Bearer"})
		return true
	}
	c := newTestClient(t, f)
	brands(t, c)
	brands(t, c)
	wantCounts(t, f, 1, 0, 2)
}

func TestLoginRefused(t *testing.T) {
	f := newFakeIYS(t, okBrands)
	c, err := New(f.srv.URL, Credentials{Username: testUser, Password: "wrong"},
		WithRateLimit(0, 0), WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Brands(context.Background(), "600")
	if !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("err = %v, want ErrLoginRefused", err)
	}
	if got := ErrorClass(err); got != consent.ClassConfiguration {
		t.Errorf("class = %q, want configuration", got)
	}
	wantCounts(t, f, 1, 0, 0) // never retried
}

func TestLoginServerErrorRetried(t *testing.T) {
	var n atomic.Int32
	f := newFakeIYS(t, okBrands)
	f.tokenHook = func(w http.ResponseWriter, _ string) bool {
		if n.Add(1) == 1 {
			writeError(w, http.StatusBadGateway, "", "proxy")
			return true
		}
		return false
	}
	c := newTestClient(t, f)
	brands(t, c)
	wantCounts(t, f, 2, 0, 1)
}

// race runs fn from n goroutines at once and waits for them.
func race(n int, fn func()) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := 0; i < n; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			fn()
		}()
	}
	start.Done()
	done.Wait()
}

func TestRefreshRacingGoroutines(t *testing.T) {
	clock := newFakeClock()
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f, WithClock(clock.Now))
	brands(t, c)
	clock.Add(2*time.Hour - time.Minute) // every goroutine finds the token due
	f.tokenDelay = 50 * time.Millisecond // so that they all pile up on it
	var failed atomic.Int32
	race(50, func() {
		if _, err := c.Brands(context.Background(), "600"); err != nil {
			failed.Add(1)
		}
	})
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	// Exactly ONE token request for 50 goroutines: the refresh.
	wantCounts(t, f, 1, 1, 51)
}

func TestFirstLoginRacingGoroutines(t *testing.T) {
	f := newFakeIYS(t, okBrands)
	f.tokenDelay = 50 * time.Millisecond
	c := newTestClient(t, f)
	race(50, func() {
		if _, err := c.Brands(context.Background(), "600"); err != nil {
			t.Error(err)
		}
	})
	wantCounts(t, f, 1, 0, 50)
}

func TestReloginRacingGoroutines(t *testing.T) {
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f)
	brands(t, c)
	f.expireTokens()
	f.tokenDelay = 50 * time.Millisecond
	race(20, func() {
		if _, err := c.Brands(context.Background(), "600"); err != nil {
			t.Error(err)
		}
	})
	// 20 calls refused with the same token share one re-login.
	if got := f.logins.Load(); got != 2 {
		t.Errorf("logins = %d, want 2", got)
	}
}

func TestLoginPauseAfterH084(t *testing.T) {
	clock := newFakeClock()
	core, logs := observer.New(zapcore.DebugLevel)
	f := newFakeIYS(t, okBrands)
	capped := true
	f.tokenHook = func(w http.ResponseWriter, _ string) bool {
		if capped {
			writeError(w, http.StatusTooManyRequests, string(consent.CodeLoginLimit), "login limit exceeded")
		}
		return capped
	}
	c := newTestClient(t, f, WithClock(clock.Now), WithLogger(zap.New(core)), WithLoginPause(time.Hour))

	_, err := c.Brands(context.Background(), "600")
	var paused *LoginPausedError
	if !errors.As(err, &paused) {
		t.Fatalf("err = %v, want *LoginPausedError", err)
	}
	if !paused.Until.Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("paused until %v, want an hour from now", paused.Until)
	}
	if got := ErrorClass(err); got != consent.ClassLoginLimit {
		t.Errorf("class = %q, want login_limit", got)
	}
	wantCounts(t, f, 1, 0, 0)
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("H084").Len(); n != 1 {
		t.Errorf("%d ERROR lines about H084, want 1", n)
	}

	capped = false // İYS would answer now, but the pause holds
	clock.Add(59 * time.Minute)
	start := time.Now()
	_, err = c.Brands(context.Background(), "600")
	if !errors.As(err, &paused) {
		t.Fatalf("err = %v during the pause, want *LoginPausedError", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("call took %v during the pause, want to fail fast", d)
	}
	wantCounts(t, f, 1, 0, 0)

	clock.Add(2 * time.Minute) // the pause is over
	brands(t, c)
	wantCounts(t, f, 2, 0, 1)
}

func TestValidTokenStillUsedDuringPause(t *testing.T) {
	clock := newFakeClock()
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f, WithClock(clock.Now))
	brands(t, c)
	f.tokenHook = func(w http.ResponseWriter, _ string) bool {
		writeError(w, http.StatusTooManyRequests, string(consent.CodeLoginLimit), "login limit exceeded")
		return true
	}
	clock.Add(2*time.Hour - time.Minute) // due for refresh; the refresh meets H084
	// The token is still valid for a minute: calls go on with it.
	brands(t, c)
	brands(t, c)
	wantCounts(t, f, 1, 1, 3)
	clock.Add(2 * time.Minute) // expired, and logins paused
	if _, err := c.Brands(context.Background(), "600"); !errors.As(err, new(*LoginPausedError)) {
		t.Fatalf("err = %v, want *LoginPausedError", err)
	}
	wantCounts(t, f, 1, 1, 3)
}

func TestFailedRefreshKeepsValidToken(t *testing.T) {
	clock := newFakeClock()
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f, WithClock(clock.Now))
	brands(t, c)
	f.tokenHook = func(w http.ResponseWriter, _ string) bool {
		writeError(w, http.StatusServiceUnavailable, "", "down")
		return true
	}
	clock.Add(2*time.Hour - 3*time.Minute)
	brands(t, c) // the refresh fails, the call goes on with the valid token
	brands(t, c) // no new refresh within the cooldown
	wantCounts(t, f, 1, 1, 3)
	clock.Add(15 * time.Second)
	brands(t, c) // the cooldown is over: one more try
	wantCounts(t, f, 1, 2, 4)
}

// İYS echoing the login body in its refusal gives the password JSON-escaped
// (\" \\ \u00e7): the error holds no form of it.
func TestLoginRefusalEchoHidesEscapedPassword(t *testing.T) {
	const pw = `pa"ss\wörd/ç`
	for _, echo := range []func(body []byte) string{
		func(body []byte) string { return "invalid request " + string(body) }, // Go's encoder: \" \\ ö ç
		func(body []byte) string { // an ASCII-only encoder: \u00f6 \u00e7, and \/
			return `invalid request {"password":"pa\"ss\\w\u00f6rd\/\u00E7"}`
		},
	} {
		f := newFakeIYS(t, okBrands)
		f.tokenHook = func(w http.ResponseWriter, _ string) bool {
			body, _ := json.Marshal(map[string]string{"password": pw})
			writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{
				{"code": "H999", "message": echo(body)}}})
			return true
		}
		c, err := New(f.srv.URL, Credentials{Username: testUser, Password: pw}, WithRateLimit(0, 0),
			WithBackoff(time.Millisecond, time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Brands(context.Background(), "600")
		if err == nil {
			t.Fatal("the login was not refused")
		}
		msg := err.Error()
		for _, frag := range []string{"ss\\", "w\\u00f6rd", "wörd", "pa\\\"", "pa\""} {
			if strings.Contains(msg, frag) {
				t.Errorf("the error holds %q of the password: %s", frag, msg)
			}
		}
		if !strings.Contains(msg, "invalid request") {
			t.Errorf("İYS's message is lost: %s", msg)
		}
	}
}
