package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// The tests speak raw HTTP and JSON to the handler, as any İYS client would.

// start is Wednesday 2025-05-14 10:00 in Türkiye, a business day; the
// previous Friday (9 May) is the oldest day a consent may be given on.
var start = time.Date(2025, 5, 14, 10, 0, 0, 0, consent.Istanbul)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	sb    *Sandbox
	srv   *httptest.Server
	clock *clock
	token string
}

// newEnv starts a sandbox on a test clock at start, seed 1, logged in.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: start}}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	sb, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.sb = sb
	e.srv = httptest.NewServer(sb.Handler())
	t.Cleanup(e.srv.Close)
	e.token = e.login().AccessToken
	return e
}

// later moves the clock on and logs in again, as a client past its token
// would.
func (e *env) later(d time.Duration) {
	e.t.Helper()
	e.clock.Add(d)
	e.token = e.login().AccessToken
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// send makes a request; body is sent as is when a string, else as JSON.
func (e *env) send(method, path, token string, body any) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read: %v", err)
	}
	return reply{resp.StatusCode, resp.Header, raw}
}

// call is an authenticated İYS API call.
func (e *env) call(method, path string, body any) reply {
	e.t.Helper()
	return e.send(method, path, e.token, body)
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errs is the reply's İYS error list.
func (r reply) errs(t *testing.T) []apiErrorJSON {
	t.Helper()
	var body struct {
		Errors []apiErrorJSON `json:"errors"`
	}
	r.decode(t, &body)
	if len(body.Errors) == 0 {
		t.Fatalf("no errors in %d %s", r.status, r.body)
	}
	return body.Errors
}

type apiErrorJSON struct {
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Location []string `json:"location"`
	Index    int      `json:"index"`
}

// want checks a status and, when code is set, the first error's code.
func (r reply) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if code != "" {
		if got := r.errs(t)[0].Code; got != code {
			t.Fatalf("code %s, want %s: %s", got, code, r.body)
		}
	}
}

type tokenJSON struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	TokenType        string `json:"tokenType"`
}

// login gets a token, trying again on an injected fault as a client would.
func (e *env) login() tokenJSON {
	e.t.Helper()
	var r reply
	for range 20 {
		r = e.send("POST", "/oauth2/token", "", map[string]string{
			"username": DefaultUsername, "password": DefaultPassword, "grant_type": "password"})
		if r.status < 500 {
			break
		}
	}
	r.want(e.t, http.StatusOK, "")
	var tok tokenJSON
	r.decode(e.t, &tok)
	return tok
}

const (
	iysCode   = "700001"
	brandCode = "600001"
	base      = "/sps/" + iysCode + "/brands/" + brandCode
)

// wc is a consent on the wire.
type wc map[string]any

// onay is an SMS ONAY for a phone number, given at d.
func onay(phone string, d time.Time) wc {
	return wc{"consentDate": d.Format("2006-01-02 15:04:05"), "source": "HS_WEB", "recipient": phone,
		"recipientType": "BIREYSEL", "status": "ONAY", "type": "MESAJ"}
}

func (c wc) with(kv ...any) wc {
	out := wc{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func phone(i int) string { return fmt.Sprintf("+90533%07d", i) }

func (e *env) add(c wc) reply {
	e.t.Helper()
	return e.call("POST", base+"/consents", c)
}

type subRequest struct {
	SubrequestID   string `json:"subrequestId"`
	Recipient      string `json:"recipient"`
	Status         string `json:"status"`
	ConsentDate    string `json:"consentDate"`
	RetailerCode   *int   `json:"retailerCode"`
	RetailerAccess []int  `json:"retailerAccess"`
}

type bulkReply struct {
	RequestID   string       `json:"requestId"`
	SubRequests []subRequest `json:"subRequests"`
}

func (e *env) submit(items []wc) bulkReply {
	e.t.Helper()
	r := e.call("POST", base+"/consents/request", items)
	r.want(e.t, http.StatusOK, "")
	var out bulkReply
	r.decode(e.t, &out)
	return out
}

type result struct {
	Index         int    `json:"index"`
	SubrequestID  string `json:"subrequestId"`
	Status        string `json:"status"`
	TransactionID string `json:"transactionId"`
	CreationDate  string `json:"creationDate"`
	Error         *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (e *env) poll(id string) []result {
	e.t.Helper()
	r := e.call("GET", base+"/consents/request/"+id, nil)
	r.want(e.t, http.StatusOK, "")
	var out []result
	r.decode(e.t, &out)
	return out
}

// byIndex orders results by their index (from 1).
func byIndex(t *testing.T, rs []result) []result {
	t.Helper()
	out := make([]result, len(rs))
	for _, r := range rs {
		if r.Index < 1 || r.Index > len(rs) || out[r.Index-1].Index != 0 {
			t.Fatalf("bad or repeated index %d of %d", r.Index, len(rs))
		}
		out[r.Index-1] = r
	}
	return out
}

// held is GET /_sandbox/consents.
func (e *env) held() []recordJSON {
	e.t.Helper()
	r := e.send("GET", "/_sandbox/consents", "", nil)
	r.want(e.t, http.StatusOK, "")
	var out []recordJSON
	r.decode(e.t, &out)
	return out
}

func (e *env) stats() statsJSON {
	e.t.Helper()
	r := e.send("GET", "/_sandbox/stats", "", nil)
	r.want(e.t, http.StatusOK, "")
	var out statsJSON
	r.decode(e.t, &out)
	return out
}

type changesReply struct {
	After string `json:"after"`
	List  []struct {
		ConsentDate   string `json:"consentDate"`
		CreationDate  string `json:"creationDate"`
		Source        string `json:"source"`
		Recipient     string `json:"recipient"`
		RecipientType string `json:"recipientType"`
		Status        string `json:"status"`
		Type          string `json:"type"`
		TransactionID string `json:"transactionId"`
	} `json:"list"`
}

func (e *env) changes(query string) changesReply {
	e.t.Helper()
	r := e.call("GET", base+"/consents/changes?"+query, nil)
	r.want(e.t, http.StatusOK, "")
	var out changesReply
	r.decode(e.t, &out)
	return out
}

func (e *env) citizen(recipient, status, source string) reply {
	e.t.Helper()
	return e.send("POST", "/_sandbox/citizen", "", map[string]string{"iysCode": iysCode, "brandCode": brandCode,
		"recipient": recipient, "recipientType": "BIREYSEL", "type": "MESAJ", "status": status, "source": source})
}
