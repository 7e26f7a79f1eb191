package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// tokens are the live access and refresh tokens, each with its expiry. A
// reset keeps them: a client's session survives an emptied sandbox.
type tokens struct {
	mu      sync.Mutex
	access  map[string]time.Time
	refresh map[string]time.Time
	logins  []time.Time // password logins of the last hour, for Options.LoginLimit
}

func newTokens() *tokens {
	return &tokens{access: map[string]time.Time{}, refresh: map[string]time.Time{}}
}

// issue makes a new pair and drops the expired ones.
func (t *tokens) issue(now time.Time, o Options) tokenResponse {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range []map[string]time.Time{t.access, t.refresh} {
		for k, exp := range m {
			if !now.Before(exp) {
				delete(m, k)
			}
		}
	}
	resp := tokenResponse{
		AccessToken:      rand.Text() + rand.Text(),
		RefreshToken:     rand.Text() + rand.Text(),
		ExpiresIn:        int64(o.TokenTTL / time.Second),
		RefreshExpiresIn: int64(o.RefreshTTL / time.Second),
		TokenType:        "Bearer",
	}
	t.access[resp.AccessToken] = now.Add(o.TokenTTL)
	t.refresh[resp.RefreshToken] = now.Add(o.RefreshTTL)
	return resp
}

func (t *tokens) valid(token string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.access[token]
	return ok && now.Before(exp)
}

// redeem spends a refresh token: each one is good for one refresh.
func (t *tokens) redeem(token string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.refresh[token]
	delete(t.refresh, token)
	return ok && now.Before(exp)
}

// login takes a place in the hourly login cap, or says how long until one
// frees up.
func (t *tokens) login(now time.Time, limit int) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.logins) > 0 && !now.Before(t.logins[0].Add(time.Hour)) {
		t.logins = t.logins[1:]
	}
	if len(t.logins) >= limit {
		return false, t.logins[0].Add(time.Hour).Sub(now)
	}
	t.logins = append(t.logins, now)
	return true, 0
}

func (t *tokens) resetLogins() {
	t.mu.Lock()
	t.logins = nil
	t.mu.Unlock()
}

type tokenRequest struct {
	Username     string `json:"username"`
	Password     string `json:"password"`
	GrantType    string `json:"grant_type"`
	RefreshToken string `json:"refresh_token"`
}

// tokenResponse names the type field tokenType, one of the two spellings
// İYS uses, so that a client needing token_type shows up here.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshExpiresIn int64  `json:"refresh_expires_in"`
	TokenType        string `json:"tokenType"`
}

// token is POST /oauth2/token: a JSON body with the password grant or the
// refresh grant.
func (s *Sandbox) token(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !readJSON(w, r, maxSmallBody, &req) {
		return
	}
	now := s.opts.Now()
	switch req.GrantType {
	case "password":
		if !s.credentialsOK(req.Username, req.Password) {
			s.stats.count(&s.stats.unauthorized)
			writeErrors(w, http.StatusUnauthorized, apiError{Message: "invalid username or password"})
			return
		}
		if ok, wait := s.auth.login(now, s.opts.LoginLimit); !ok {
			s.throttle(w, consent.CodeLoginLimit, wait)
			return
		}
		s.stats.count(&s.stats.logins)
	case "refresh_token":
		if !s.auth.redeem(req.RefreshToken, now) {
			s.unauthorized(w)
			return
		}
		s.stats.count(&s.stats.refreshes)
	default:
		writeErrors(w, http.StatusBadRequest, apiError{Message: "grant_type must be password or refresh_token",
			Location: []string{"grant_type"}, Value: req.GrantType})
		return
	}
	writeJSON(w, http.StatusOK, s.auth.issue(now, s.opts))
}

func (s *Sandbox) credentialsOK(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password))
	return u&p == 1
}

// authed lets through calls with a live bearer token, else 401 H351.
func (s *Sandbox) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.auth.valid(strings.TrimSpace(tok), s.opts.Now()) {
			s.unauthorized(w)
			return
		}
		h(w, r)
	}
}

func (s *Sandbox) unauthorized(w http.ResponseWriter) {
	s.stats.count(&s.stats.unauthorized)
	writeErrors(w, http.StatusUnauthorized, codeError(consent.CodeBadToken))
}
