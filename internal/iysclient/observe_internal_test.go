package iysclient

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Each way an exchange can end has its result; the sandbox cannot produce
// them all (a reset connection, a bad certificate, a cancelled wait).
func TestResultOf(t *testing.T) {
	apiErr := func(status int, code consent.Code) error {
		e := &APIError{Status: status, Code: code}
		if code != "" {
			e.Errors = []ItemError{{Code: code}}
		}
		return fmt.Errorf("submit bulk: %w", e)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	reset := &url.Error{Op: "Post", URL: "https://api.iys.org.tr", Err: &net.OpError{Op: "read", Err: fmt.Errorf("connection reset by peer")}}
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{nil, nil, ResultOK},
		{nil, apiErr(429, ""), ResultThrottled},
		{nil, apiErr(400, consent.CodeRateLimited), ResultThrottled},
		{nil, apiErr(503, ""), ResultTransient},
		{nil, apiErr(400, consent.CodeBusy), ResultTransient},
		{nil, reset, ResultNetwork},
		{nil, fmt.Errorf("read answer: %w", io.ErrUnexpectedEOF), ResultNetwork},
		{nil, apiErr(400, consent.CodeTooOld), ResultRefused},
		{nil, apiErr(404, ""), ResultRefused},
		{nil, apiErr(401, ""), ResultAuth},
		{nil, apiErr(403, ""), ResultAuth},
		{nil, &LoginPausedError{Until: time.Now().Add(time.Hour)}, ResultAuth},
		{nil, apiErr(400, consent.CodeDuplicateInRequest), ResultError},
		{nil, &url.Error{Op: "Get", URL: "https://x", Err: x509.UnknownAuthorityError{}}, ResultError},
		{nil, fmt.Errorf("answer is larger than %d bytes", maxBody), ResultError},
		{canceled, reset, ResultCanceled},
	} {
		ctx := tc.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		if got := resultOf(ctx, tc.err); got != tc.want {
			t.Errorf("resultOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
