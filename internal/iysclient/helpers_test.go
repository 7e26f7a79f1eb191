package iysclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

const (
	testUser     = "api-user"
	testPassword = "Pa55-w0rd-never-logged"
)

// fakeIYS is a small İYS for tests: it issues and checks tokens as İYS
// does (401 H351 for an unknown one) and hands API calls to api.
type fakeIYS struct {
	srv *httptest.Server
	api http.HandlerFunc

	mu               sync.Mutex
	valid            map[string]bool // access tokens accepted
	refreshable      map[string]bool // refresh tokens accepted
	issued           []string        // every token issued, access and refresh
	n                int
	expiresIn        int
	refreshExpiresIn int
	tokenDelay       time.Duration
	// tokenHook may answer a token request itself (returning true).
	tokenHook func(w http.ResponseWriter, grant string) bool

	logins, refreshes, apiCalls atomic.Int64
}

func newFakeIYS(t *testing.T, api http.HandlerFunc) *fakeIYS {
	t.Helper()
	f := &fakeIYS{api: api, valid: map[string]bool{}, refreshable: map[string]bool{},
		expiresIn: 7200, refreshExpiresIn: 14400}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIYS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth2/token" {
		f.token(w, r)
		return
	}
	f.apiCalls.Add(1)
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	ok := f.valid[tok]
	f.mu.Unlock()
	if !ok {
		writeError(w, http.StatusUnauthorized, "H351", "token is missing or invalid")
		return
	}
	f.api(w, r)
}

func (f *fakeIYS) token(w http.ResponseWriter, r *http.Request) {
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "", "bad json")
		return
	}
	grant := body["grant_type"]
	switch grant {
	case "password":
		f.logins.Add(1)
	case "refresh_token":
		f.refreshes.Add(1)
	}
	time.Sleep(f.tokenDelay)
	if f.tokenHook != nil && f.tokenHook(w, grant) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case grant == "password" && (body["username"] != testUser || body["password"] != testPassword):
		writeError(w, http.StatusUnauthorized, "", "bad username or password")
		return
	case grant == "refresh_token" && !f.refreshable[body["refresh_token"]]:
		writeError(w, http.StatusBadRequest, "", "invalid refresh token")
		return
	case grant != "password" && grant != "refresh_token":
		writeError(w, http.StatusBadRequest, "", "bad grant")
		return
	}
	// A new pair replaces the old one, as a rotating token server does.
	f.valid, f.refreshable = map[string]bool{}, map[string]bool{}
	f.n++
	acc, ref := fmt.Sprintf("ACCESS-%d-tok3n", f.n), fmt.Sprintf("REFRESH-%d-tok3n", f.n)
	f.valid[acc], f.refreshable[ref] = true, true
	f.issued = append(f.issued, acc, ref)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": acc, "refresh_token": ref,
		"expires_in": f.expiresIn, "refresh_expires_in": f.refreshExpiresIn, "token_type": "Bearer"})
}

// expireTokens makes İYS forget every access token, as when it expires
// one early.
func (f *fakeIYS) expireTokens() {
	f.mu.Lock()
	f.valid = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeIYS) secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{testPassword}, f.issued...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"code": code, "message": msg}}})
}

// newTestClient makes a client of f with fast retries and no pacing.
func newTestClient(t *testing.T, f *fakeIYS, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithRateLimit(0, 0),
		WithBackoff(time.Millisecond, 5*time.Millisecond),
		WithRetry(5 * time.Second),
		WithLogger(zaptest.NewLogger(t)),
	}
	c, err := New(f.srv.URL, Credentials{Username: testUser, Password: testPassword}, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 5, 15, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// okBrands answers the brands call, the cheapest call to drive the client.
func okBrands(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []map[string]any{{"brandCode": 700, "name": "Marka", "master": true}})
}
