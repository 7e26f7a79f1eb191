package iysclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Exchange is one HTTP request to İYS and how it ended: each try of a call
// and each login or refresh is one. It carries no URL, code or body, so
// that whoever counts exchanges keeps a bounded set of names.
type Exchange struct {
	// Endpoint is a fixed name per kind of call: EndpointToken, or a call's
	// name with underscores ("submit_bulk", "bulk_results", "changes",
	// "add_consent", "consent_status", ...).
	Endpoint string
	Result   string // one of the Result constants
	// Duration runs from sending the request to reading its answer (for a
	// streamed answer, its headers). Waits for the rate limiter, a token
	// or a retry are not in it.
	Duration time.Duration
}

// Results of an exchange, from İYS's answer or its absence.
const (
	ResultOK        = "ok"        // a 2xx answer
	ResultThrottled = "throttled" // 429 or İYS's rate-limit codes: the client slows down
	ResultTransient = "transient" // 5xx or İYS's transient codes: retried
	ResultNetwork   = "network"   // no answer: connection refused or reset, timeout, body cut off
	ResultRefused   = "refused"   // a 4xx verdict on what was sent (a consent İYS will not take, no record)
	ResultAuth      = "auth"      // 401, 403, a refused login, İYS's hourly login cap (H084)
	ResultCanceled  = "canceled"  // our side stopped waiting (shutdown, the window's end)
	ResultError     = "error"     // anything else: a request İYS calls malformed, an answer we cannot read
)

// EndpointToken is the Endpoint of logins and refreshes.
const EndpointToken = "token"

// exchangeHook reports exchanges to the configured hook, if any.
type exchangeHook func(Exchange)

func (o exchangeHook) done(ctx context.Context, endpoint string, sent time.Time, err error) {
	if o != nil {
		o(Exchange{Endpoint: endpoint, Result: resultOf(ctx, err), Duration: time.Since(sent)})
	}
}

// endpointOf is a call's Endpoint: its fixed name, spaces as underscores.
func endpointOf(cl call) string { return strings.ReplaceAll(cl.name, " ", "_") }

// resultOf tells how one exchange ended from its error.
func resultOf(ctx context.Context, err error) string {
	var (
		apiErr *APIError
		paused *LoginPausedError
		netErr net.Error
	)
	switch {
	case err == nil:
		return ResultOK
	case ctx.Err() != nil:
		return ResultCanceled
	case errors.As(err, &paused):
		return ResultAuth
	case errors.As(err, &apiErr):
		return apiResult(apiErr)
	case isCertError(err):
		return ResultError
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF):
		return ResultNetwork
	}
	return ResultError
}

func apiResult(e *APIError) string {
	switch {
	case e.throttled():
		return ResultThrottled
	case e.retryable():
		return ResultTransient
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return ResultAuth
	}
	switch e.Class() {
	case consent.ClassToken, consent.ClassConfiguration, consent.ClassLoginLimit:
		return ResultAuth
	case consent.ClassOurBug:
		return ResultError
	}
	if e.Status >= 400 && e.Status <= 499 {
		return ResultRefused
	}
	return ResultError
}
