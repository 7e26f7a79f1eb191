package iysclient

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestNewRefusesPlainHTTPOffLoopback(t *testing.T) {
	creds := Credentials{Username: "u", Password: "p"}
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://api.iys.org.tr", true},
		{"https://api.sandbox.iys.org.tr/", true},
		{"https://10.0.0.5:8443/iys", true},
		{"http://127.0.0.1:8089", true},
		{"http://127.5.6.7", true},
		{"http://[::1]:8089", true},
		{"http://localhost:8089", true},
		{"http://LOCALHOST", true},
		{"http://api.iys.org.tr", false},
		{"http://10.0.0.5", false},
		{"http://localhost.example.com", false},
		{"http://127.0.0.1.nip.io", false},
		{"http://[::2]", false},
		{"ftp://api.iys.org.tr", false},
		{"api.iys.org.tr", false},
		{"", false},
		{"https://user:secret@api.iys.org.tr", false},
		{"https://api.iys.org.tr?x=1", false},
		{"https://", false},
	}
	for _, tt := range tests {
		_, err := New(tt.url, creds)
		if (err == nil) != tt.ok {
			t.Errorf("New(%q) err = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("New(%q) error quotes the URL's password: %v", tt.url, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	good := Credentials{Username: "u", Password: "p"}
	tests := []struct {
		name  string
		creds Credentials
		opt   Option
	}{
		{"no password", Credentials{Username: "u"}, nil},
		{"no username", Credentials{Password: "p"}, nil},
		{"nil http client", good, WithHTTPClient(nil)},
		{"nil logger", good, WithLogger(nil)},
		{"nil clock", good, WithClock(nil)},
		{"zero timeout", good, WithTimeout(0)},
		{"negative rps", good, WithRateLimit(-1, 1)},
		{"zero burst", good, WithRateLimit(1, 0)},
		{"zero slowdown", good, WithSlowdown(0)},
		{"zero retry budget", good, WithRetry(0)},
		{"backoff max below initial", good, WithBackoff(time.Second, time.Millisecond)},
		{"zero attempts", good, WithMaxAttempts(0)},
		{"zero retry-after cap", good, WithMaxRetryAfter(0)},
		{"negative margin", good, WithRefreshMargin(-time.Second)},
		{"zero login pause", good, WithLoginPause(0)},
	}
	for _, tt := range tests {
		var opts []Option
		if tt.opt != nil {
			opts = append(opts, tt.opt)
		}
		if _, err := New("https://api.iys.org.tr", tt.creds, opts...); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
	if _, err := New("https://api.iys.org.tr", good, WithRateLimit(0, 0), WithTimeout(time.Second)); err != nil {
		t.Errorf("unlimited rate refused: %v", err)
	}
}

func TestHTTPClientCopiedWithTimeout(t *testing.T) {
	mine := &http.Client{}
	c, err := New("https://api.iys.org.tr", Credentials{Username: "u", Password: "p"}, WithHTTPClient(mine))
	if err != nil {
		t.Fatal(err)
	}
	if mine.Timeout != 0 || mine.CheckRedirect != nil {
		t.Error("the caller's http.Client was changed")
	}
	if c.http.Timeout != DefaultTimeout {
		t.Errorf("timeout = %v, want %v", c.http.Timeout, DefaultTimeout)
	}
	if c.http.CheckRedirect == nil {
		t.Error("redirects are followed")
	}
}

func TestCredentialsNeverPrinted(t *testing.T) {
	cr := Credentials{Username: "u", Password: "hunter2-secret"}
	for _, s := range []string{fmt.Sprint(cr), fmt.Sprintf("%v %+v %#v %s", cr, cr, cr, cr)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password printed: %s", s)
		}
	}
}

func TestEndpointEscapesSegments(t *testing.T) {
	c, err := New("https://api.iys.org.tr/base/", Credentials{Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	u := c.endpoint([]string{"sps", "6/0?0", "brands"}, url.Values{"after": {"1_ab"}})
	if got, want := u.String(), "https://api.iys.org.tr/base/sps/6%2F0%3F0/brands?after=1_ab"; got != want {
		t.Errorf("url = %s, want %s", got, want)
	}
	for _, bad := range []string{"", ".", "..", " 600"} {
		if err := checkSegments([]string{"iys code"}, bad); err == nil {
			t.Errorf("segment %q accepted", bad)
		}
	}
}

func TestLogURLRedactsUnknownQuery(t *testing.T) {
	u, _ := url.Parse("https://h/p?after=1_ab&limit=5&token=abc")
	got := logURL(u)
	if strings.Contains(got, "abc") || !strings.Contains(got, "after=1_ab") {
		t.Errorf("logURL = %s", got)
	}
}
