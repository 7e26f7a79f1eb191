package iysclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

const (
	userAgent    = "iys-sync"
	maxBody      = 64 << 20 // a 2xx answer; the largest (a feed page, bulk results) is far below
	maxErrorBody = 1 << 20  // an error answer, read through io.LimitReader
	maxDrain     = 1 << 20  // read to reuse the connection, then give up on it
)

// call is one logical request: sent once, retried as a whole.
type call struct {
	name   string // "submit bulk": for errors and logs
	method string
	path   []string // unescaped segments
	query  url.Values
	body   any    // JSON, marshalled once and re-sent unchanged on every try
	accept string // "" for JSON
	// paced: the call waits for the rate limiter. Only bulk submissions
	// are paced (IYS_RATE_LIMIT is bulk requests per second); polls, pulls
	// and queries go at once, so a slow bulk rate never delays a result.
	paced bool
}

// callState is what the tries of one call share.
type callState struct {
	id       string // one per logical call, kept across tries (stripe's idempotency-key model), for logs
	tries    int
	relogged bool // one re-login per call, after a 401
	log      *zap.Logger
}

// do runs the call and decodes its 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var body []byte
	err := c.run(ctx, cl, func(resp *http.Response) error {
		defer drainClose(resp.Body)
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		if err != nil {
			return fmt.Errorf("read answer: %w", err) // cut off: try again
		}
		if len(b) > maxBody {
			return backoff.Permanent(fmt.Errorf("answer is larger than %d bytes", maxBody))
		}
		body = b
		return nil
	})
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// stream runs the call and hands over the open body of its 2xx answer.
func (c *Client) stream(ctx context.Context, cl call) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := c.run(ctx, cl, func(resp *http.Response) error {
		rc = resp.Body
		return nil
	})
	return rc, err
}

// run sends the call with retries until onOK takes a 2xx answer, a verdict
// comes, the budget is spent or ctx is done; then it returns ctx.Err(), not
// the error the cancellation caused (go-github's rule).
func (c *Client) run(ctx context.Context, cl call, onOK func(*http.Response) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	u := c.endpoint(cl.path, cl.query)
	st := &callState{id: newCallID()}
	st.log = c.log.With(zap.String("call", cl.name), zap.String("call_id", st.id))
	b := c.retry.newBackOff()
	op := func() error {
		st.tries++
		err := c.try(ctx, cl, u, payload, st, onOK)
		if err == nil {
			return nil
		}
		return failure(ctx, err, b)
	}
	notify := func(err error, wait time.Duration) {
		f := []zap.Field{zap.Int("attempt", st.tries), zap.Duration("wait", wait)}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			f = append(f, zap.Int("status", apiErr.Status), zap.String("code", string(apiErr.Code)))
		} else {
			f = append(f, zap.Error(err))
		}
		st.log.Warn("İYS call failed: retrying", f...)
	}
	err := backoff.RetryNotify(op, backoff.WithContext(b, ctx), notify)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// try is one try: a token, a paced request and, on a 401, one re-login and
// one more request per call. A second 401 is the call's error. Each request
// sent is reported to the observer once its answer is read.
func (c *Client) try(ctx context.Context, cl call, u *url.URL, payload []byte, st *callState, onOK func(*http.Response) error) error {
	tok, err := c.tokens.token(ctx, "")
	if err != nil {
		return err
	}
	endpoint := endpointOf(cl)
	resp, sent, err := c.send(ctx, cl, u, payload, tok, st)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized && !st.relogged {
		st.relogged = true
		drainClose(resp.Body)
		c.observe.done(ctx, endpoint, sent, &APIError{Status: http.StatusUnauthorized})
		st.log.Warn("İYS refused the access token (401): logging in again, once")
		if tok, err = c.tokens.token(ctx, tok); err != nil {
			return err
		}
		if resp, sent, err = c.send(ctx, cl, u, payload, tok, st); err != nil {
			return err
		}
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		err := onOK(resp)
		c.observe.done(ctx, endpoint, sent, err)
		return err
	}
	apiErr := readAPIError(resp, c.now())
	c.observe.done(ctx, endpoint, sent, apiErr)
	if apiErr.throttled() {
		c.limiter.Throttled()
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return backoff.Permanent(apiErr)
	}
	return apiErr
}

// send waits for the rate limiter (paced calls only) and makes one HTTP
// request, sent at the time it returns. A request that got no answer is
// reported to the observer here.
func (c *Client) send(ctx context.Context, cl call, u *url.URL, payload []byte, tok string, st *callState) (resp *http.Response, sent time.Time, err error) {
	if cl.paced {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, time.Time{}, err
		}
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return nil, time.Time{}, backoff.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	accept := cl.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)

	start := time.Now()
	resp, err = c.http.Do(req)
	fields := []zap.Field{zap.String("method", cl.method), zap.String("url", logURL(u)),
		zap.Int("attempt", st.tries), zap.Duration("duration", time.Since(start))}
	if err != nil {
		st.log.Debug("İYS request failed", append(fields, zap.Error(err))...)
		c.observe.done(ctx, endpointOf(cl), start, err)
		return nil, start, err
	}
	st.log.Debug("İYS request", append(fields, zap.Int("status", resp.StatusCode))...)
	return resp, start, nil
}

// readAPIError reads an error answer through io.LimitReader, then drains
// and closes the body.
func readAPIError(resp *http.Response, now time.Time) *APIError {
	defer drainClose(resp.Body)
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := parseAPIError(resp.StatusCode, b)
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// drainClose reads a little of what is left, so the connection can be
// reused, and closes the body.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}

func newCallID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
