package sandboxtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// Paths of the admin endpoints.
const (
	PathConsents = "/_sandbox/consents"
	PathCitizen  = "/_sandbox/citizen"
	PathStats    = "/_sandbox/stats"
	PathReset    = "/_sandbox/reset"
	PathRights   = "/_sandbox/rights"
	PathDeny     = "/_sandbox/deny"
	PathBrands   = "/_sandbox/brands"
)

// Route patterns of the İYS API: the keys of Stats.Requests.
const (
	RouteToken      = "POST /oauth2/token"
	RouteAddConsent = "POST /sps/{iysCode}/brands/{brandCode}/consents"
	RouteSubmitBulk = "POST /sps/{iysCode}/brands/{brandCode}/consents/request"
	RoutePollBulk   = "GET /sps/{iysCode}/brands/{brandCode}/consents/request/{requestId}"
)

// Record is a record İYS holds, as GET /_sandbox/consents lists it.
type Record struct {
	IYSCode       string `json:"iysCode"`
	BrandCode     string `json:"brandCode"`
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
	CreationDate  string `json:"creationDate"`
	TransactionID string `json:"transactionId"`
}

// Key is recipient/recipientType/type, the record's key within its brand.
func (r Record) Key() string { return Key(r.Recipient, r.RecipientType, r.Type) }

// Key is the key of Record.Key from its parts.
func Key[RT, T ~string](recipient string, recipientType RT, typ T) string {
	return recipient + "/" + string(recipientType) + "/" + string(typ)
}

// Change names a record by brand and key, and for Citizen and PutConsent
// gives its new status, source and (PutConsent only; empty: now) consent
// date.
type Change struct {
	IYSCode       string `json:"iysCode"`
	BrandCode     string `json:"brandCode"`
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Type          string `json:"type"`
	Status        string `json:"status,omitempty"`
	Source        string `json:"source,omitempty"`
	ConsentDate   string `json:"consentDate,omitempty"`
}

// Stats is GET /_sandbox/stats: what the sandbox saw since it started or
// was reset.
type Stats struct {
	Requests        map[string]int64       `json:"requests"` // per route pattern (Route...)
	Throttled       int64                  `json:"throttled"`
	ThrottledByCode map[consent.Code]int64 `json:"throttledByCode"`
	Faults          int64                  `json:"faults"`
	FaultsByStatus  map[string]int64       `json:"faultsByStatus"`
	Tokens          struct {
		Logins    int64 `json:"logins"`
		Refreshes int64 `json:"refreshes"`
	} `json:"tokens"`
	Unauthorized int64                  `json:"unauthorized"`
	Forbidden    int64                  `json:"forbidden"`
	Recorded     int64                  `json:"recorded"` // consents recorded: single, bulk items, citizens'
	Refused      map[consent.Code]int64 `json:"refused"`  // consents refused by a rule, by code
}

// Processed counts the consents İYS judged: recorded or refused by a rule.
func (s Stats) Processed() int64 {
	n := s.Recorded
	for _, v := range s.Refused {
		n += v
	}
	return n
}

// Rights is GET /_sandbox/rights: the brands whose partnership ended, and
// the rules in force, the last match deciding.
type Rights struct {
	DenyBrands []string            `json:"denyBrands"`
	Rules      []sandbox.RightRule `json:"rules"`
}

// Error is an admin endpoint's answer other than 2xx.
type Error struct {
	Method, Path string
	Status       int
	Code         consent.Code // the first İYS error code of the body, if any
	Body         string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// Admin is a client of a sandbox's admin endpoints over HTTP. Its methods
// fail the test on an error, so they belong to the test's goroutine; Call
// returns the error instead, for other goroutines.
type Admin struct {
	t    testing.TB
	base string
}

var httpClient = &http.Client{Timeout: time.Minute}

// NewAdmin is a client of the sandbox at baseURL.
func NewAdmin(t testing.TB, baseURL string) *Admin {
	return &Admin{t: t, base: strings.TrimSuffix(baseURL, "/")}
}

// Consents lists the records İYS holds for a brand, or for every brand
// when brandCode is "".
func (a *Admin) Consents(brandCode string) []Record {
	a.t.Helper()
	path := PathConsents
	if brandCode != "" {
		path += "?brandCode=" + url.QueryEscape(brandCode)
	}
	out := []Record{}
	a.must(a.Call(http.MethodGet, path, nil, &out))
	return out
}

// Held is Consents by Record.Key; a key listed twice fails the test.
func (a *Admin) Held(brandCode string) map[string]Record {
	a.t.Helper()
	recs := a.Consents(brandCode)
	out := make(map[string]Record, len(recs))
	for _, r := range recs {
		if _, dup := out[r.Key()]; dup {
			a.t.Fatalf("the sandbox holds %s twice", r.Key())
		}
		out[r.Key()] = r
	}
	return out
}

// Citizen records a change a citizen made through İYS (source IYS_...),
// dated now, and returns the record.
func (a *Admin) Citizen(c Change) Record {
	a.t.Helper()
	var out Record
	a.must(a.Call(http.MethodPost, PathCitizen, c, &out))
	return out
}

// PutConsent sets a record behind the client's back: no rule, no feed entry.
func (a *Admin) PutConsent(c Change) Record {
	a.t.Helper()
	var out Record
	a.must(a.Call(http.MethodPut, PathConsents, c, &out))
	return out
}

// DeleteConsent makes İYS forget a record silently, and returns the record
// it held.
func (a *Admin) DeleteConsent(c Change) Record {
	a.t.Helper()
	var out Record
	a.must(a.Call(http.MethodDelete, PathConsents, c, &out))
	return out
}

// Stats reads the counters.
func (a *Admin) Stats() Stats {
	a.t.Helper()
	var out Stats
	a.must(a.Call(http.MethodGet, PathStats, nil, &out))
	return out
}

// Reset empties the sandbox.
func (a *Admin) Reset() {
	a.t.Helper()
	a.must(a.Call(http.MethodPost, PathReset, nil, nil))
}

// Rights reads the partnerships ended and the rules.
func (a *Admin) Rights() Rights {
	a.t.Helper()
	var out Rights
	a.must(a.Call(http.MethodGet, PathRights, nil, &out))
	return out
}

// AddRight appends a rule.
func (a *Admin) AddRight(r sandbox.RightRule) Rights {
	a.t.Helper()
	var out Rights
	a.must(a.Call(http.MethodPost, PathRights, r, &out))
	return out
}

// Deny ends (denied) or restores the partnership with a brand.
func (a *Admin) Deny(brandCode string, denied bool) Rights {
	a.t.Helper()
	var out Rights
	a.must(a.Call(http.MethodPost, PathDeny, DenyRequest{BrandCode: brandCode, Denied: denied}, &out))
	return out
}

// DenyRequest is the body of POST /_sandbox/deny.
type DenyRequest struct {
	BrandCode string `json:"brandCode"`
	Denied    bool   `json:"denied"`
}

// AddBrand registers a brand (or renames it, or makes it master).
func (a *Admin) AddBrand(b sandbox.Brand) sandbox.Brand {
	a.t.Helper()
	var out sandbox.Brand
	a.must(a.Call(http.MethodPost, PathBrands, b, &out))
	return out
}

func (a *Admin) must(err error) {
	a.t.Helper()
	if err != nil {
		a.t.Fatal(err)
	}
}

// Call sends in (nil: no body) as JSON to an admin path and decodes the
// answer into out (nil: ignored). An answer other than 2xx is an *Error.
func (a *Admin) Call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Method: method, Path: path, Status: resp.StatusCode, Body: string(raw)}
		var errs struct {
			Errors []struct {
				Code consent.Code `json:"code"`
			} `json:"errors"`
		}
		if json.Unmarshal(raw, &errs) == nil && len(errs.Errors) > 0 {
			e.Code = errs.Errors[0].Code
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, path, raw, err)
		}
	}
	return nil
}
