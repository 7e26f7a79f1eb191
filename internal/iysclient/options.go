package iysclient

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Defaults of New. The rate is a guess on the safe side: İYS publishes no
// limit, integrations report per-second throttling, and a 429 slows the
// client down by itself anyway. It is also IYS_RATE_LIMIT's default.
const (
	DefaultTimeout       = 30 * time.Second // one HTTP exchange, body included
	DefaultRateLimit     = 1.0              // bulk submissions per second (other calls are not paced)
	DefaultBurst         = 1
	DefaultSlowdown      = time.Minute // how long a 429 halves the rate
	DefaultInitialWait   = 500 * time.Millisecond
	DefaultMaxWait       = 30 * time.Second // longest wait between two tries
	DefaultMaxElapsed    = 5 * time.Minute  // retry budget of one call
	DefaultMaxRetryAfter = 2 * time.Minute  // cap on a server's Retry-After
	DefaultRefreshMargin = 5 * time.Minute  // refresh this long before expiry, at most half the lifetime
	DefaultLoginPause    = time.Hour        // no login after H084 for this long
)

// Option configures a Client. Options validate their values: New fails on a
// bad one instead of running with a surprise.
type Option func(*config) error

type config struct {
	httpClient    *http.Client
	timeout       time.Duration
	timeoutSet    bool
	log           *zap.Logger
	now           func() time.Time
	rps           float64
	burst         int
	slowdown      time.Duration
	retry         retrySettings
	refreshMargin time.Duration
	loginPause    time.Duration
	observe       func(Exchange) // WithObserver; nil: none
	vault         TokenVault     // WithTokenVault; nil: the token is this process's own
	pacer         Pacer          // WithPacer; nil: this process paces alone
}

func defaultConfig() config {
	return config{
		timeout:  DefaultTimeout,
		log:      zap.NewNop(),
		now:      time.Now,
		rps:      DefaultRateLimit,
		burst:    DefaultBurst,
		slowdown: DefaultSlowdown,
		retry: retrySettings{
			initial:       DefaultInitialWait,
			max:           DefaultMaxWait,
			maxElapsed:    DefaultMaxElapsed,
			maxRetryAfter: DefaultMaxRetryAfter,
		},
		refreshMargin: DefaultRefreshMargin,
		loginPause:    DefaultLoginPause,
	}
}

// WithHTTPClient sends through hc (its Transport, proxy, TLS settings). The
// client is copied, never changed: the copy gets the timeout of WithTimeout
// (or DefaultTimeout when hc has none) and refuses redirects unless hc has
// its own redirect policy.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("with HTTP client: client is nil")
		}
		c.httpClient = hc
		return nil
	}
}

// WithTimeout bounds one HTTP exchange, body included. It is required in the
// sense that there is always one: DefaultTimeout unless set.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("with timeout: %v is not a positive duration", d)
		}
		c.timeout, c.timeoutSet = d, true
		return nil
	}
}

// WithLogger logs through l; the default logs nothing.
func WithLogger(l *zap.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("with logger: logger is nil")
		}
		c.log = l
		return nil
	}
}

// WithClock sets the clock used for token lifetimes, the login pause, the
// slow-down after a 429 and Retry-After dates. For tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("with clock: clock is nil")
		}
		c.now = now
		return nil
	}
}

// WithRateLimit paces bulk submissions (POST consents/request) at rps per
// second with bursts of burst; rps 0 means no pacing (then a 429 is only met
// by backoff). Other calls (polls, pulls, queries, logins) are not paced: a
// 429 on any of them still slows the bulk pace down for a while.
func WithRateLimit(rps float64, burst int) Option {
	return func(c *config) error {
		switch {
		case rps < 0 || math.IsNaN(rps) || math.IsInf(rps, 0):
			return fmt.Errorf("with rate limit: rps %v must be 0 (unlimited) or positive", rps)
		case rps > 0 && burst < 1:
			return fmt.Errorf("with rate limit: burst %d must be at least 1", burst)
		}
		c.rps, c.burst = rps, burst
		return nil
	}
}

// WithSlowdown sets how long a 429 halves the rate before it doubles back.
func WithSlowdown(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("with slowdown: %v is not a positive duration", d)
		}
		c.slowdown = d
		return nil
	}
}

// WithRetry sets the retry budget of one call: no new try starts after
// maxElapsed has passed since the first.
func WithRetry(maxElapsed time.Duration) Option {
	return func(c *config) error {
		if maxElapsed <= 0 {
			return fmt.Errorf("with retry: %v is not a positive duration", maxElapsed)
		}
		c.retry.maxElapsed = maxElapsed
		return nil
	}
}

// WithBackoff sets the first wait between tries and the longest one; waits
// grow exponentially in between, with jitter.
func WithBackoff(initial, max time.Duration) Option {
	return func(c *config) error {
		if initial <= 0 || max < initial {
			return fmt.Errorf("with backoff: want 0 < initial (%v) <= max (%v)", initial, max)
		}
		c.retry.initial, c.retry.max = initial, max
		return nil
	}
}

// WithMaxAttempts caps the tries of one call, the first included (1 = never
// retry); by default only the time budget of WithRetry bounds them.
func WithMaxAttempts(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("with max attempts: %d is less than 1", n)
		}
		c.retry.maxAttempts = n
		return nil
	}
}

// WithMaxRetryAfter caps how long a server's Retry-After may make a call wait.
func WithMaxRetryAfter(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("with max retry-after: %v is not a positive duration", d)
		}
		c.retry.maxRetryAfter = d
		return nil
	}
}

// WithRefreshMargin sets how long before expiry the token is refreshed. It
// is capped at half the token's lifetime, so that a short-lived token is
// still used for a while.
func WithRefreshMargin(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("with refresh margin: %v is negative", d)
		}
		c.refreshMargin = d
		return nil
	}
}

// WithLoginPause sets how long no login is tried after İYS's login cap (H084).
func WithLoginPause(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("with login pause: %v is not a positive duration", d)
		}
		c.loginPause = d
		return nil
	}
}

// WithObserver calls observe after every exchange with İYS, from the
// goroutine that made it: observe must be safe for concurrent use, and
// quick. Metrics hook in here; the client knows nothing of them.
func WithObserver(observe func(Exchange)) Option {
	return func(c *config) error {
		if observe == nil {
			return errors.New("with observer: observer is nil")
		}
		c.observe = observe
		return nil
	}
}
