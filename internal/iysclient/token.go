package iysclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/redact"
)

// maxTokenBody bounds a token answer; a real one is a few hundred bytes.
const maxTokenBody = 1 << 20

// tokenSource holds the one token of an API user, shared by every call.
// Logins are scarce at İYS (an hourly cap, H084, then about an hour of
// refusals), so: refresh shortly before expiry; log in afresh only when the
// refresh token is gone, expired or refused, or İYS refused the access
// token (a 401); let one request be in flight while others wait for it;
// and after H084 try no login at all for a long pause.
type tokenSource struct {
	http   *http.Client
	url    string
	creds  Credentials
	log    *zap.Logger
	now    func() time.Time
	margin time.Duration
	pause  time.Duration
	hook   exchangeHook // reports each token request
	vault  TokenVault   // shares the token with other processes; nil: none

	mu          sync.Mutex
	access      string
	renewAt     time.Time // refresh from here on
	accessExp   time.Time
	refresh     string
	refreshTill time.Time // last moment to try the refresh token
	flight      *flight   // the one token request in flight, if any
	pausedUntil time.Time
	pauseErr    *LoginPausedError
	refused     string // the last token İYS answered 401 to: never taken from the vault again
}

type flight struct {
	done chan struct{}
	err  error // written before done is closed
}

// token returns an access token to send. refused is the token İYS has just
// answered 401 to ("" otherwise): it is dropped with its refresh token, and
// a fresh login replaces it, unless another goroutine already did.
func (ts *tokenSource) token(ctx context.Context, refused string) (string, error) {
	for {
		ts.mu.Lock()
		now := ts.now()
		if refused != "" && ts.access == refused {
			ts.access, ts.refresh = "", ""
			ts.refused = refused
		}
		valid := ts.access != "" && now.Before(ts.accessExp)
		paused := now.Before(ts.pausedUntil)
		if valid && (now.Before(ts.renewAt) || paused) {
			tok := ts.access // during a pause, a valid token is still good to use
			ts.mu.Unlock()
			return tok, nil
		}
		if paused {
			err := ts.pauseErr
			ts.mu.Unlock()
			return "", err
		}
		if f := ts.flight; f != nil {
			ts.mu.Unlock()
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-f.done:
			}
			// The leader's cancellation is not ours: try again, maybe as leader.
			if f.err != nil && !isContextErr(f.err) {
				ts.mu.Lock()
				tok := ts.stillValid(ts.now())
				ts.mu.Unlock()
				if tok != "" {
					return tok, nil
				}
				return "", f.err
			}
			refused = "" // whatever the flight got replaces the refused token
			continue
		}
		f := &flight{done: make(chan struct{})}
		ts.flight = f
		useRefresh := ts.refresh != "" && now.Before(ts.refreshTill)
		ts.mu.Unlock()

		tok, err := ts.renewShared(ctx, useRefresh)
		f.err = err
		ts.mu.Lock()
		ts.flight = nil
		if err != nil && !isContextErr(err) {
			if cur := ts.stillValid(ts.now()); cur != "" {
				ts.renewAt = ts.now().Add(min(renewRetry, ts.accessExp.Sub(ts.now())/2))
				ts.log.Warn("renewing the İYS token failed: using the current one until it expires", zap.Error(err))
				tok, err = cur, nil
			}
		}
		ts.mu.Unlock()
		close(f.done)
		return tok, err
	}
}

// renewShared renews through the vault when there is one: under its lock,
// a token another process got meanwhile is taken instead of renewing, a
// pause it met is honoured, and what this one gets is stored for the
// others. A vault that fails before renewal costs no call: renew alone.
func (ts *tokenSource) renewShared(ctx context.Context, useRefresh bool) (string, error) {
	if ts.vault == nil {
		return ts.renew(ctx, useRefresh)
	}
	var tok string
	reached := false
	err := ts.vault.Update(ctx, func(cur SharedTokens) (SharedTokens, bool, error) {
		reached = true
		now := ts.now()
		ts.mu.Lock()
		ts.adopt(cur)
		valid := ts.stillValid(now)
		fresh, paused := valid != "" && now.Before(ts.renewAt), now.Before(ts.pausedUntil)
		useRefresh := ts.refresh != "" && now.Before(ts.refreshTill)
		pauseErr := ts.pauseErr
		ts.mu.Unlock()
		switch {
		case fresh || (paused && valid != ""):
			tok = valid
			return cur, false, nil
		case paused:
			return cur, false, pauseErr
		}
		t, err := ts.renew(ctx, useRefresh)
		var pe *LoginPausedError
		if err != nil && !errors.As(err, &pe) {
			return cur, false, err
		}
		tok = t
		return ts.shared(), true, err
	})
	if err != nil && !reached {
		if ctx.Err() != nil {
			return "", err
		}
		ts.log.Warn("the shared İYS token could not be reached: renewing this process's own", zap.Error(err))
		return ts.renew(ctx, useRefresh)
	}
	return tok, err
}

// adopt takes from the vault a token newer than this process's and a
// longer pause. The caller holds mu.
func (ts *tokenSource) adopt(cur SharedTokens) {
	if cur.Access != "" && cur.Access != ts.refused && cur.AccessExp.After(ts.accessExp) {
		ts.access, ts.accessExp, ts.renewAt = cur.Access, cur.AccessExp, cur.RenewAt
		ts.refresh, ts.refreshTill = cur.Refresh, cur.RefreshTill
	}
	if cur.PausedUntil.After(ts.pausedUntil) {
		ts.pausedUntil = cur.PausedUntil
		ts.pauseErr = &LoginPausedError{Until: cur.PausedUntil}
	}
}

// shared is the state to store in the vault.
func (ts *tokenSource) shared() SharedTokens {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return SharedTokens{Access: ts.access, AccessExp: ts.accessExp, RenewAt: ts.renewAt,
		Refresh: ts.refresh, RefreshTill: ts.refreshTill, PausedUntil: ts.pausedUntil}
}

// renewRetry spaces renewals that failed while the token was still valid.
const renewRetry = 10 * time.Second

// stillValid is the current token if it has not expired, else "". The
// caller holds mu.
func (ts *tokenSource) stillValid(now time.Time) string {
	if ts.access != "" && now.Before(ts.accessExp) {
		return ts.access
	}
	return ""
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// renew gets a new pair: by the refresh token when it may still work, else,
// or when İYS refuses it, by a fresh login.
func (ts *tokenSource) renew(ctx context.Context, useRefresh bool) (string, error) {
	if useRefresh {
		tok, err := ts.request(ctx, grantRefresh)
		var apiErr *APIError
		var paused *LoginPausedError
		switch {
		case err == nil:
			return tok, nil
		case errors.As(err, &paused) || !errors.As(err, &apiErr) || apiErr.retryable():
			return "", fmt.Errorf("refresh token: %w", err) // transient: the call's retry comes back
		}
		ts.log.Info("İYS refused the refresh token: logging in again",
			zap.Int("status", apiErr.Status), zap.String("code", string(apiErr.Code)))
		ts.mu.Lock()
		ts.refresh = ""
		ts.mu.Unlock()
	}
	tok, err := ts.request(ctx, grantPassword)
	var apiErr *APIError
	var paused *LoginPausedError
	if err != nil && !errors.As(err, &paused) && errors.As(err, &apiErr) && !apiErr.retryable() {
		return "", fmt.Errorf("log in: %w: %w", ErrLoginRefused, err)
	}
	if err != nil {
		return "", fmt.Errorf("log in: %w", err)
	}
	return tok, nil
}

type tokenAnswer struct {
	AccessToken      string  `json:"access_token"`
	RefreshToken     string  `json:"refresh_token"`
	ExpiresIn        flexInt `json:"expires_in"`
	RefreshExpiresIn flexInt `json:"refresh_expires_in"`
	// İYS writes the type both ways; it is read for the debug log only, as
	// the token is always sent as Bearer.
	TokenType  string `json:"token_type"`
	TokenType2 string `json:"tokenType"`
}

// request makes one token request. Its body holds the password or the
// refresh token: it is never logged, and İYS's messages are scrubbed of
// both before they become errors.
func (ts *tokenSource) request(ctx context.Context, grant string) (tok string, err error) {
	ts.mu.Lock()
	refresh := ts.refresh
	ts.mu.Unlock()
	body := map[string]string{"grant_type": grant}
	if grant == grantRefresh {
		body["refresh_token"] = refresh
	} else {
		body["username"], body["password"] = ts.creds.Username, ts.creds.Password
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encode token request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url, bytes.NewReader(payload))
	if err != nil {
		return "", fmt.Errorf("build token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	start := ts.now()
	sent := time.Now()
	defer func() { ts.hook.done(ctx, EndpointToken, sent, err) }()
	resp, err := ts.http.Do(req)
	if err != nil {
		return "", err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := readAPIError(resp, ts.now())
		apiErr.scrub(ts.creds.Password, refresh)
		scrubEscaped(apiErr, ts.creds.Password, refresh)
		if apiErr.hasCode(consent.CodeLoginLimit) || (resp.StatusCode == http.StatusTooManyRequests && len(apiErr.codes()) == 0) {
			return "", ts.startPause(apiErr)
		}
		return "", apiErr
	}
	defer drainClose(resp.Body)
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return "", fmt.Errorf("read token answer: %w", err)
	}
	var a tokenAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return "", fmt.Errorf("decode token answer: %w", err)
	}
	if a.AccessToken == "" {
		return "", errors.New("token answer has no access_token")
	}
	ts.store(grant, a, start)
	return a.AccessToken, nil
}

// scrubEscaped hides the secrets of a token request in İYS's answer in the
// other forms an echo of the login body gives them: JSON-escaped (\" \\
// \u00e7), percent-encoded. scrub has replaced them as sent.
func scrubEscaped(e *APIError, secrets ...string) {
	s := redact.New(secrets...)
	e.Message = s.String(e.Message)
	for i := range e.Errors {
		e.Errors[i].Message = s.String(e.Errors[i].Message)
		for j := range e.Errors[i].Location {
			e.Errors[i].Location[j] = s.String(e.Errors[i].Location[j])
		}
	}
	for j := range e.Location {
		e.Location[j] = s.String(e.Location[j])
	}
}

// store keeps a new pair. Lifetimes count from before the request was sent,
// to err on the early side; the refresh margin is capped at half the
// lifetime so that a short-lived token is used for a while.
func (ts *tokenSource) store(grant string, a tokenAnswer, start time.Time) {
	ttl := seconds(a.ExpiresIn, defaultAccessTTL)
	ts.mu.Lock()
	ts.access = a.AccessToken
	ts.accessExp = start.Add(ttl)
	ts.renewAt = ts.accessExp.Add(-min(ts.margin, ttl/2))
	if a.RefreshToken != "" {
		rttl := seconds(a.RefreshExpiresIn, defaultRefreshTTL)
		ts.refresh = a.RefreshToken
		ts.refreshTill = start.Add(rttl - min(ts.margin, rttl/2))
	} else if grant == grantPassword {
		ts.refresh = ""
	}
	ts.mu.Unlock()
	msg := "logged in to İYS"
	if grant == grantRefresh {
		msg = "refreshed the İYS token"
	}
	ts.log.Info(msg, zap.Duration("expires_in", ttl))
	ts.log.Debug("İYS token type", zap.String("token_type", a.TokenType+a.TokenType2))
}

func seconds(n flexInt, def time.Duration) time.Duration {
	if n <= 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// startPause stops logins after H084 for the pause (or a longer Retry-After).
func (ts *tokenSource) startPause(apiErr *APIError) error {
	d := max(ts.pause, apiErr.RetryAfter)
	ts.mu.Lock()
	ts.pausedUntil = ts.now().Add(d)
	ts.pauseErr = &LoginPausedError{Until: ts.pausedUntil, Err: apiErr}
	err := ts.pauseErr
	ts.mu.Unlock()
	ts.log.Error("İYS refused the login: its hourly login cap is reached (H084); no login is tried until the pause ends, and calls needing one fail fast",
		zap.Time("until", err.Until), zap.Duration("pause", d), zap.Int("status", apiErr.Status))
	return err
}
