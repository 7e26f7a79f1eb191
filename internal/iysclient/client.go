package iysclient

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Credentials are one İYS API user's: the brand's own, or a solution
// partner's. They print and log without the password.
type Credentials struct {
	Username string
	Password string
}

// String hides the password from %v, %+v and %s.
func (c Credentials) String() string {
	return fmt.Sprintf("{Username:%s Password:[redacted]}", c.Username)
}

// GoString hides the password from %#v.
func (c Credentials) GoString() string { return "iysclient.Credentials" + c.String() }

// MarshalLogObject hides the password from zap.Any and zap.Object.
func (c Credentials) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("username", c.Username)
	return nil
}

// Client calls İYS for one API user. It is safe for concurrent use; make one
// per API user and share it, so that the user has one token.
type Client struct {
	base    *url.URL
	http    *http.Client
	log     *zap.Logger
	now     func() time.Time
	tokens  *tokenSource
	limiter *adaptiveLimiter
	retry   retrySettings
	observe exchangeHook // WithObserver's hook; nil: none
}

// New makes a client of the İYS API at baseURL (such as
// https://api.iys.org.tr). Plain http is refused unless the host is
// loopback (127.0.0.0/8, ::1, localhost): the password and tokens must
// not cross a network in clear.
func New(baseURL string, creds Credentials, opts ...Option) (*Client, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("iysclient: %w", err)
	}
	if creds.Username == "" || creds.Password == "" {
		return nil, errors.New("iysclient: credentials: username and password are required")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("iysclient: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("iysclient: %w", err)
		}
	}
	c := &Client{
		base:  base,
		http:  httpClient(cfg),
		log:   cfg.log,
		now:   cfg.now,
		retry: cfg.retry,
	}
	c.limiter = newAdaptiveLimiter(cfg.rps, cfg.burst, cfg.slowdown, cfg.now, cfg.log)
	c.limiter.pacer = cfg.pacer
	c.tokens = &tokenSource{
		http:   c.http,
		url:    c.endpoint(pathToken(), nil).String(),
		creds:  creds,
		log:    cfg.log,
		now:    cfg.now,
		margin: cfg.refreshMargin,
		pause:  cfg.loginPause,
		vault:  cfg.vault,
	}
	c.observe, c.tokens.hook = cfg.observe, cfg.observe
	return c, nil
}

// httpClient copies the caller's client (never changing it) and gives the
// copy a timeout and, unless it has its own policy, no redirects: İYS does
// not redirect, and following one could carry the bearer token elsewhere.
func httpClient(cfg config) *http.Client {
	var hc http.Client
	if cfg.httpClient != nil {
		hc = *cfg.httpClient
	}
	if cfg.timeoutSet || hc.Timeout == 0 {
		hc.Timeout = cfg.timeout
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return &hc
}

// parseBaseURL checks the base URL. Its errors never quote the URL, which
// could hold credentials.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("base URL is not a valid URL")
	case u.User != nil:
		return nil, errors.New("base URL must not carry credentials: pass them as Credentials")
	case u.Host == "":
		return nil, errors.New("base URL has no host: want https://host")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("base URL must not have a query or fragment")
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("base URL: plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost), not %q: use https", u.Hostname())
		}
	default:
		return nil, fmt.Errorf("base URL: scheme %q is not https", u.Scheme)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// endpoint builds the URL of a path made of segments, each escaped on its
// own, so that a code holding "/" or "?" cannot change the path.
func (c *Client) endpoint(segs []string, q url.Values) *url.URL {
	u := *c.base
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	u.Path = c.base.Path + "/" + strings.Join(segs, "/")
	u.RawPath = c.base.EscapedPath() + "/" + strings.Join(esc, "/")
	u.RawQuery = q.Encode()
	return &u
}

// checkSegments refuses path values that are empty or would walk the path.
func checkSegments(names []string, values ...string) error {
	for i, v := range values {
		if v == "" || v == "." || v == ".." || strings.TrimSpace(v) != v {
			return fmt.Errorf("%s %q is not a valid path value", names[i], v)
		}
	}
	return nil
}

// logURL is a URL fit for logs: path, and query values only for keys known
// to hold no secret.
func logURL(u *url.URL) string {
	s := u.EscapedPath()
	if u.RawQuery == "" {
		return s
	}
	q := u.Query()
	for k, vs := range q {
		if !loggableQuery[k] {
			for i := range vs {
				vs[i] = "REDACTED"
			}
		}
	}
	return s + "?" + q.Encode()
}
