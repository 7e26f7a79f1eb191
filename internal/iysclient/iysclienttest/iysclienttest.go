// Package iysclienttest builds the İYS client the way tests want it: the
// production client, with waits short enough for a test.
package iysclienttest

import (
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/iysclient"
)

// Fast are the options of a client that waits little: retries back off from
// 2 ms to 40 ms within 15 s, requests are not paced, one exchange times out
// after 15 s, and a server's Retry-After is capped at 1 s.
func Fast() []iysclient.Option {
	return []iysclient.Option{
		iysclient.WithBackoff(2*time.Millisecond, 40*time.Millisecond),
		iysclient.WithRetry(15 * time.Second),
		iysclient.WithRateLimit(0, 0),
		iysclient.WithTimeout(15 * time.Second),
		iysclient.WithMaxRetryAfter(time.Second),
	}
}

// New is iysclient.New with the Fast options, then opts, which win; it fails
// the test on an error.
func New(t testing.TB, baseURL string, creds iysclient.Credentials, opts ...iysclient.Option) *iysclient.Client {
	t.Helper()
	c, err := iysclient.New(baseURL, creds, append(Fast(), opts...)...)
	if err != nil {
		t.Fatalf("iysclient.New: %v", err)
	}
	return c
}
