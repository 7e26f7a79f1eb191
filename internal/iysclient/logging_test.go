package iysclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// TestNoSecretInLogsOrErrors drives a login, a refresh, a 401 with its
// re-login, a refused refresh and an H084, with every log level on, and
// checks that no password or token shows in any log line, field or error.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	clock := newFakeClock()
	core, logs := observer.New(zapcore.DebugLevel)
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f, WithClock(clock.Now), WithLogger(zap.New(core)))
	ctx := context.Background()
	var errs []error
	call := func() {
		if _, err := c.Brands(ctx, "600"); err != nil {
			errs = append(errs, err)
		}
	}

	call() // login
	clock.Add(2*time.Hour - time.Minute)
	call() // refresh
	f.expireTokens()
	call() // 401, re-login, retry
	if f.logins.Load() != 2 || f.refreshes.Load() != 1 {
		t.Fatalf("logins %d, refreshes %d: the scenario did not run", f.logins.Load(), f.refreshes.Load())
	}

	// İYS echoing the secrets in its refusals must not leak them either.
	f.tokenHook = func(w http.ResponseWriter, grant string) bool {
		f.mu.Lock()
		last := f.issued[len(f.issued)-1]
		f.mu.Unlock()
		if grant == "refresh_token" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{
				{"code": "H999", "message": "bad refresh token " + last, "value": last}}})
			return true
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"errors": []map[string]any{
			{"code": "H084", "message": "too many logins for password " + testPassword, "value": testPassword}}})
		return true
	}
	clock.Add(2*time.Hour + time.Minute) // expired: refresh refused, then login meets H084
	call()
	call() // fails fast during the pause
	if len(errs) != 2 {
		t.Fatalf("errors = %v, want the H084 one and the fast one", errs)
	}

	secrets := f.secrets()
	for _, e := range logs.All() {
		text := e.Message + " " + fmt.Sprint(e.ContextMap())
		if b, err := json.Marshal(e.ContextMap()); err == nil {
			text += string(b)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("log %q shows secret %q: %s", e.Message, s, text)
			}
		}
	}
	for _, err := range errs {
		text := chainText(err)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("error shows secret %q: %s", s, text)
			}
		}
	}
	if logs.Len() == 0 {
		t.Error("nothing was logged: the test checks nothing")
	}
}

// chainText is the text of an error and of every error it wraps, İYS's
// echoed values included: what a caller could log after errors.As.
func chainText(err error) string {
	if err == nil {
		return ""
	}
	text := fmt.Sprintf("%v %+v", err, err)
	if apiErr, ok := err.(*APIError); ok {
		for _, it := range apiErr.Errors {
			text += " " + it.Message + " " + string(it.Value)
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		text += " " + chainText(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			text += " " + chainText(e)
		}
	}
	return text
}

// TestLogsMaskRecipients: a single-consent call logs the recipient masked.
func TestLogsMaskRecipients(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"transactionId": "t"})
	})
	c := newTestClient(t, f, WithLogger(zap.New(core)))
	cn := testConsents(t, 1)[0]
	if _, err := c.AddConsent(context.Background(), "600", "700", cn); err != nil {
		t.Fatal(err)
	}
	masked := 0
	for _, e := range logs.All() {
		text := fmt.Sprint(e.ContextMap())
		if strings.Contains(text, cn.Recipient) {
			t.Errorf("log %q shows the recipient: %s", e.Message, text)
		}
		if strings.Contains(text, consent.MaskRecipient(cn.Recipient)) {
			masked++
		}
	}
	if masked == 0 {
		t.Error("no log line carries the masked recipient")
	}
}
