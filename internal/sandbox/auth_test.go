package sandbox

import (
	"net/http"
	"testing"
	"time"
)

func TestTokenPasswordGrant(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.send("POST", "/oauth2/token", "", map[string]string{"username": "sandbox", "password": "sandbox", "grant_type": "password"})
	r.want(t, http.StatusOK, "")
	var fields map[string]any
	r.decode(t, &fields)
	for _, f := range []string{"access_token", "refresh_token", "expires_in", "refresh_expires_in", "tokenType"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("answer lacks %s: %s", f, r.body)
		}
	}
	if _, ok := fields["token_type"]; ok {
		t.Errorf("answer has token_type; the sandbox sends only tokenType: %s", r.body)
	}
	var tok tokenJSON
	r.decode(t, &tok)
	if tok.ExpiresIn != 7200 || tok.RefreshExpiresIn != 14400 || tok.TokenType != "Bearer" {
		t.Errorf("token = %+v, want 7200 s, 14400 s, Bearer", tok)
	}
}

func TestTokenRefused(t *testing.T) {
	e := newEnv(t, Options{})
	e.send("POST", "/oauth2/token", "", map[string]string{"username": "sandbox", "password": "nope", "grant_type": "password"}).
		want(t, http.StatusUnauthorized, "")
	e.send("POST", "/oauth2/token", "", map[string]string{"grant_type": "client_credentials"}).
		want(t, http.StatusBadRequest, "")
	// İYS takes JSON, not the form body of standard OAuth2.
	e.send("POST", "/oauth2/token", "", "username=sandbox&password=sandbox&grant_type=password").
		want(t, http.StatusBadRequest, "")
}

func TestBearerRequired(t *testing.T) {
	e := newEnv(t, Options{})
	body := onay(phone(1), start)
	e.send("POST", base+"/consents", "", body).want(t, http.StatusUnauthorized, "H351")
	e.send("POST", base+"/consents", "not-a-token", body).want(t, http.StatusUnauthorized, "H351")
	e.send("GET", "/sps/"+iysCode+"/brands", "", nil).want(t, http.StatusUnauthorized, "H351")
	e.send("GET", "/integrator/X/sps/"+iysCode, "", nil).want(t, http.StatusUnauthorized, "H351")
	if n := len(e.held()); n != 0 {
		t.Fatalf("refused calls recorded %d consents", n)
	}
	e.add(body).want(t, http.StatusOK, "")
}

func TestTokenExpiry(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: 10 * time.Minute})
	e.clock.Add(10*time.Minute - time.Second)
	e.add(onay(phone(1), e.clock.Now())).want(t, http.StatusOK, "")
	e.clock.Add(time.Second)
	e.add(onay(phone(2), e.clock.Now())).want(t, http.StatusUnauthorized, "H351")
	e.token = e.login().AccessToken
	e.add(onay(phone(2), e.clock.Now())).want(t, http.StatusOK, "")
}

func TestRefreshGrant(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: time.Hour, RefreshTTL: 2 * time.Hour})
	first := e.login()
	e.clock.Add(90 * time.Minute) // access expired, refresh still live
	e.send("POST", base+"/consents", first.AccessToken, onay(phone(1), e.clock.Now())).want(t, http.StatusUnauthorized, "H351")

	r := e.send("POST", "/oauth2/token", "", map[string]string{"refresh_token": first.RefreshToken, "grant_type": "refresh_token"})
	r.want(t, http.StatusOK, "")
	var second tokenJSON
	r.decode(t, &second)
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh gave the same tokens")
	}
	e.send("POST", base+"/consents", second.AccessToken, onay(phone(1), e.clock.Now())).want(t, http.StatusOK, "")

	// A refresh token is good once.
	e.send("POST", "/oauth2/token", "", map[string]string{"refresh_token": first.RefreshToken, "grant_type": "refresh_token"}).
		want(t, http.StatusUnauthorized, "H351")
	// And not past its life.
	e.clock.Add(2 * time.Hour)
	e.send("POST", "/oauth2/token", "", map[string]string{"refresh_token": second.RefreshToken, "grant_type": "refresh_token"}).
		want(t, http.StatusUnauthorized, "H351")

	st := e.stats()
	if st.Tokens.Logins != 2 || st.Tokens.Refreshes != 1 {
		t.Fatalf("tokens = %+v, want 2 logins (env + test) and 1 refresh", st.Tokens)
	}
}

func TestLoginLimit(t *testing.T) {
	e := newEnv(t, Options{LoginLimit: 2}) // newEnv logged in once
	tok := e.login()
	r := e.send("POST", "/oauth2/token", "", map[string]string{"username": "sandbox", "password": "sandbox", "grant_type": "password"})
	r.want(t, http.StatusTooManyRequests, "H084")
	if got := r.header.Get("Retry-After"); got != "3600" {
		t.Fatalf("Retry-After = %q, want 3600", got)
	}
	// Refreshes are not logins: they go on.
	e.send("POST", "/oauth2/token", "", map[string]string{"refresh_token": tok.RefreshToken, "grant_type": "refresh_token"}).
		want(t, http.StatusOK, "")
	e.clock.Add(time.Hour)
	e.login()
	if st := e.stats(); st.ThrottledByCode["H084"] != 1 {
		t.Fatalf("throttled = %v, want one H084", st.ThrottledByCode)
	}
}
