package iysclient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// The retry policy lives apart from the wait policy (go-retryablehttp's
// CheckRetry and Backoff): failure() decides whether an error may pass,
// newBackOff() how long to wait before the next try.

type retrySettings struct {
	initial, max  time.Duration // first and longest wait
	maxElapsed    time.Duration // no new try after this long
	maxAttempts   int           // 0: only maxElapsed bounds the tries
	maxRetryAfter time.Duration // cap on the server's Retry-After
}

// retryAfterBackOff waits what the server asked in Retry-After (capped)
// instead of the exponential wait, while the exponential policy still
// counts the tries and the budget.
type retryAfterBackOff struct {
	backoff.BackOff
	hint time.Duration // set by the try that failed, used once
	max  time.Duration
}

func (b *retryAfterBackOff) NextBackOff() time.Duration {
	next := b.BackOff.NextBackOff()
	hint := b.hint
	b.hint = 0
	if next == backoff.Stop || hint <= 0 {
		return next
	}
	return min(hint, b.max)
}

// newBackOff is a fresh policy for one call: backoff state is never shared
// between calls, so one call's failures do not shorten another's budget.
func (s retrySettings) newBackOff() *retryAfterBackOff {
	exp := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(s.initial),
		backoff.WithMaxInterval(s.max),
		backoff.WithMaxElapsedTime(s.maxElapsed),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMultiplier(2),
	)
	var b backoff.BackOff = exp
	if s.maxAttempts > 0 {
		b = backoff.WithMaxRetries(exp, uint64(s.maxAttempts-1))
	}
	return &retryAfterBackOff{BackOff: b, max: s.maxRetryAfter}
}

// failure decides whether an error of one try may pass with another try:
// network errors and transient answers may; a done context, a verdict, a
// login refusal or pause and a bad certificate may not. It feeds a
// retryable answer's Retry-After to the backoff.
func failure(ctx context.Context, err error, b *retryAfterBackOff) error {
	var (
		perm   *backoff.PermanentError
		paused *LoginPausedError
		apiErr *APIError
	)
	switch {
	case ctx.Err() != nil:
		return backoff.Permanent(ctx.Err())
	case errors.As(err, &perm):
		return err
	case errors.As(err, &paused), errors.Is(err, ErrLoginRefused), isCertError(err):
		return backoff.Permanent(err)
	case errors.As(err, &apiErr):
		if !apiErr.retryable() {
			return backoff.Permanent(err)
		}
		b.hint = apiErr.RetryAfter
	}
	return err // a network error: the request may not have arrived
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second) // absurd values must not overflow
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
