package iysclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

// These tests run the real client over real HTTP against the sandbox, the
// project's independent implementation of docs/iys-api.md. They read what
// İYS ended up holding through the sandbox's admin endpoints
// (sandboxtest.Admin), and speak to the İYS API with plain HTTP where the
// client's own view could hide a mistake (the raw order and index of bulk
// results, the codes of requests the client refuses to send).

const (
	sbIYS      = "700100"
	sbBrand    = "800100"
	sbUser     = "sandbox-user"
	sbPassword = "sandbox-pass"
)

// sbBase is Wednesday 2025-05-14 10:00 in Türkiye, a business day with no
// holiday near it: consent dates an hour or two back are within İYS's three
// business days, dates a month back are not.
var sbBase = time.Date(2025, 5, 14, 10, 0, 0, 0, consent.Istanbul)

// sbClock is the sandbox's clock: sbBase plus the real time elapsed since
// the test began (so token lifetimes and async delays pass in real time),
// plus a jump a test may add to move to another day.
type sbClock struct {
	start time.Time
	jump  atomic.Int64
}

func (c *sbClock) Now() time.Time {
	return sbBase.Add(time.Since(c.start) + time.Duration(c.jump.Load()))
}

func (c *sbClock) Jump(d time.Duration) { c.jump.Add(int64(d)) }

// ago is a consent date d before the sandbox's now (in the future when d < 0).
func (c *sbClock) ago(d time.Duration) consent.Date { return consent.NewDate(c.Now().Add(-d)) }

type sbEnv struct {
	t     *testing.T
	sb    *sandboxtest.Server
	admin *sandboxtest.Admin
	url   string
	clock *sbClock
}

// startSandbox serves a sandbox on a loopback port, on the test clock, with
// the test's API user.
func startSandbox(t *testing.T, opts sandbox.Options) *sbEnv {
	t.Helper()
	e := &sbEnv{t: t, clock: &sbClock{start: time.Now()}}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	opts.Username, opts.Password = sbUser, sbPassword
	e.sb = sandboxtest.Start(t, opts)
	e.admin, e.url = e.sb.Admin, e.sb.URL
	return e
}

// client is the production client with short waits (iysclienttest.Fast).
func (e *sbEnv) client(opts ...iysclient.Option) *iysclient.Client {
	e.t.Helper()
	return iysclienttest.New(e.t, e.url, iysclient.Credentials{Username: sbUser, Password: sbPassword}, opts...)
}

// raw sends one plain HTTP request and returns the status and body.
func (e *sbEnv) raw(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// rawJSON is raw, wanting status want, decoding the answer into out.
func (e *sbEnv) rawJSON(method, path, token string, body any, want int, out any) {
	e.t.Helper()
	status, b := e.raw(method, path, token, body)
	if status != want {
		e.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// rawToken logs in with plain HTTP (it counts as a login in the stats).
func (e *sbEnv) rawToken() string {
	e.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	e.rawJSON(http.MethodPost, "/oauth2/token", "",
		map[string]string{"grant_type": "password", "username": sbUser, "password": sbPassword}, http.StatusOK, &tok)
	return tok.AccessToken
}

// recKey is the key of a consent's record in sandboxtest.Admin.Held.
func recKey(c consent.Consent) string { return sandboxtest.Key(c.Recipient, c.RecipientType, c.Type) }

// citizen records a change a citizen made through İYS.
func (e *sbEnv) citizen(brandCode, recipient string, t consent.Type, st consent.Status, src consent.Source) sandboxtest.Record {
	e.t.Helper()
	return e.admin.Citizen(sandboxtest.Change{IYSCode: sbIYS, BrandCode: brandCode, Recipient: recipient,
		RecipientType: string(consent.Bireysel), Type: string(t), Status: string(st), Source: string(src)})
}

// phone is a distinct valid Turkish mobile number per n.
func phone(n int) string { return fmt.Sprintf("+90533%07d", n) }

func onay(recipient string, d consent.Date) consent.Consent {
	return consent.Consent{Recipient: recipient, RecipientType: consent.Bireysel, Type: consent.TypeMesaj,
		Status: consent.StatusOnay, ConsentDate: d, Source: consent.SourceWeb}
}

func ret(recipient string, d consent.Date) consent.Consent {
	c := onay(recipient, d)
	c.Status = consent.StatusRet
	return c
}

// mustAdd records one consent and fails the test on any error.
func mustAdd(t *testing.T, c *iysclient.Client, brandCode string, cn consent.Consent) *iysclient.Transaction {
	t.Helper()
	tx, err := c.AddConsent(context.Background(), sbIYS, brandCode, cn)
	if err != nil {
		t.Fatalf("AddConsent(%s %s %s): %v", cn.Recipient, cn.Status, cn.ConsentDate, err)
	}
	if tx.TransactionID == "" || tx.CreationDate.IsZero() {
		t.Fatalf("AddConsent: transaction %+v lacks an id or a creation date", tx)
	}
	return tx
}

// submitAndWait sends a bulk request, waits for its results and matches
// them to the sent consents.
func submitAndWait(t *testing.T, c *iysclient.Client, brandCode string, items []consent.Consent) (*iysclient.BulkRequest, []iysclient.ItemResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := c.SubmitBulk(ctx, sbIYS, brandCode, items)
	if err != nil {
		t.Fatalf("SubmitBulk: %v", err)
	}
	res, err := c.WaitBulk(ctx, sbIYS, brandCode, req.RequestID, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitBulk: %v", err)
	}
	matched, err := iysclient.MatchResults(req.Items, res)
	if err != nil {
		t.Fatalf("MatchResults: %v", err)
	}
	return req, matched
}

// apiError unwraps the *APIError of err, failing the test when there is none.
func apiError(t *testing.T, err error) *iysclient.APIError {
	t.Helper()
	var apiErr *iysclient.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return apiErr
}

// wantAPIError checks an error's HTTP status, İYS code and class.
func wantAPIError(t *testing.T, what string, err error, status int, code consent.Code, class consent.Class) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want HTTP %d %s", what, status, code)
	}
	apiErr := apiError(t, err)
	if apiErr.Status != status || apiErr.Code != code || apiErr.Class() != class {
		t.Fatalf("%s: HTTP %d %s class %s, want HTTP %d %s class %s (%v)", what,
			apiErr.Status, apiErr.Code, apiErr.Class(), status, code, class, err)
	}
	if got := iysclient.ErrorClass(err); got != class {
		t.Fatalf("%s: ErrorClass = %s, want %s", what, got, class)
	}
}

// sortedKeys is for stable failure messages.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mustJSON(t *testing.T, raw []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("decode %s: %v", strings.TrimSpace(string(raw)), err)
	}
}
