package iysclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// maxMessage bounds an İYS message kept in an error; İYS's are one sentence.
const maxMessage = 300

// ItemError is one entry of an İYS error answer's "errors" list.
type ItemError struct {
	Code     consent.Code
	Message  string
	Location []string
	// Index is the item's index as İYS wrote it, nil when it wrote none. In a
	// bulk request refused whole it points into the sent array, counting
	// from 1 [doc]; RefusedItems checks it against Value before trusting it.
	Index *int
	// Value is the refused value as İYS echoed it, raw. It may be personal
	// data: never log it.
	Value json.RawMessage
}

// Class tells what the item's code means.
func (e ItemError) Class() consent.Class { return consent.Classify(e.Code) }

// APIError is a non-2xx answer of İYS. Its Code, Message, Location and
// Index are those of the first entry of Errors, which lists them all.
type APIError struct {
	Status     int
	Code       consent.Code
	Message    string
	Location   []string
	Index      *int
	Errors     []ItemError
	RetryAfter time.Duration // the answer's Retry-After, 0 when none
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "iys: HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + string(e.Code))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if len(e.Location) > 0 {
		b.WriteString(" (at " + strings.Join(e.Location, ", ") + ")")
	}
	if e.Index != nil {
		fmt.Fprintf(&b, " [index %d]", *e.Index)
	}
	if n := len(e.Errors); n > 1 {
		fmt.Fprintf(&b, " and %d more", n-1)
	}
	return b.String()
}

// Class tells what the answer means: the class of its İYS code, or, when
// the code is missing or unknown, of its HTTP status (429 and 5xx
// transient, 401 token, 403 configuration).
func (e *APIError) Class() consent.Class {
	if cl := consent.Classify(e.Code); cl != consent.ClassUnknown {
		return cl
	}
	switch {
	case e.Status == http.StatusTooManyRequests || e.Status >= 500:
		return consent.ClassTransient
	case e.Status == http.StatusUnauthorized:
		return consent.ClassToken
	case e.Status == http.StatusForbidden:
		return consent.ClassConfiguration
	}
	return consent.ClassUnknown
}

// RefusedForItems reports whether İYS refused a request whole because of
// its items (a bulk request holding a value İYS will not take): a 4xx other
// than 401 (token), 403 (rights) and 429 (pace), none of whose codes is about
// the request itself (H194, H125: our bug), the rights, the pace or the
// token. Such a request may be sent again without the items it names.
func (e *APIError) RefusedForItems() bool {
	if e.Status < 400 || e.Status > 499 || e.Status == http.StatusUnauthorized ||
		e.Status == http.StatusForbidden || e.Status == http.StatusTooManyRequests {
		return false
	}
	for _, c := range e.codes() {
		if !consent.Classify(c).IsOutcome() {
			return false
		}
	}
	return true
}

// codes lists every İYS code of the answer.
func (e *APIError) codes() []consent.Code {
	out := make([]consent.Code, 0, len(e.Errors)+1)
	if e.Code != "" && len(e.Errors) == 0 {
		out = append(out, e.Code)
	}
	for _, it := range e.Errors {
		if it.Code != "" {
			out = append(out, it.Code)
		}
	}
	return out
}

func (e *APIError) hasCode(c consent.Code) bool {
	for _, x := range e.codes() {
		if x == c {
			return true
		}
	}
	return false
}

// retryable tells a passing failure from a verdict: 429 and 500/502/503/504,
// or an answer whose every code is transient. A 4xx verdict never is.
func (e *APIError) retryable() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusUnauthorized:
		return false // the re-login path handles it, once
	}
	cs := e.codes()
	for _, c := range cs {
		if consent.Classify(c) != consent.ClassTransient {
			return false
		}
	}
	return len(cs) > 0
}

// throttled reports whether İYS said we send too fast.
func (e *APIError) throttled() bool {
	return e.Status == http.StatusTooManyRequests ||
		e.hasCode(consent.CodeRateLimited) || e.hasCode(consent.CodeRateLimited2)
}

// scrub removes secrets from the messages, should İYS ever echo one.
func (e *APIError) scrub(secrets ...string) {
	clean := func(s string) string {
		for _, x := range secrets {
			if x != "" {
				s = strings.ReplaceAll(s, x, "[redacted]")
			}
		}
		return s
	}
	e.Message = clean(e.Message)
	for i := range e.Errors {
		e.Errors[i].Message = clean(e.Errors[i].Message)
		e.Errors[i].Value = nil // a token endpoint's echoed value could be the password
	}
}

// parseAPIError reads an error answer leniently: İYS's {"errors":[...]},
// a bare {"code","message"}, or OAuth2's {"error","error_description"}.
// A body that is none of these leaves only the status.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var w struct {
		Errors           []wireItemError `json:"errors"`
		Code             flexString      `json:"code"`
		Message          string          `json:"message"`
		Location         flexStrings     `json:"location"`
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &w) != nil {
		e.Message = http.StatusText(status)
		return e
	}
	for _, it := range w.Errors {
		e.Errors = append(e.Errors, it.item())
	}
	if len(e.Errors) == 0 {
		top := wireItemError{Code: w.Code, Message: w.Message, Location: w.Location}
		var s string
		var obj wireItemError
		switch {
		case json.Unmarshal(w.Error, &s) == nil && s != "":
			top.Message = strings.TrimSpace(s + " " + w.ErrorDescription)
		case json.Unmarshal(w.Error, &obj) == nil && (obj.Code != "" || obj.Message != ""):
			top = obj
		}
		if top.Code != "" || top.Message != "" {
			e.Errors = []ItemError{top.item()}
		}
	}
	if len(e.Errors) > 0 {
		first := e.Errors[0]
		e.Code, e.Message, e.Location, e.Index = first.Code, first.Message, first.Location, first.Index
	}
	return e
}

type wireItemError struct {
	Code     flexString      `json:"code"`
	Message  string          `json:"message"`
	Location flexStrings     `json:"location"`
	Index    *flexInt        `json:"index"`
	Value    json.RawMessage `json:"value"`
}

func (w wireItemError) item() ItemError {
	it := ItemError{
		Code:     consent.Code(strings.ToUpper(strings.TrimSpace(string(w.Code)))),
		Message:  truncate(w.Message, maxMessage),
		Location: w.Location,
		Value:    w.Value,
	}
	if w.Index != nil {
		i := int(*w.Index)
		it.Index = &i
	}
	return it
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// LoginPausedError is returned while no login is tried after İYS's hourly
// login cap (H084): calls that need a login fail fast until Until.
type LoginPausedError struct {
	Until time.Time
	Err   *APIError // İYS's answer that started the pause
}

func (e *LoginPausedError) Error() string {
	return fmt.Sprintf("iys: login paused until %s: İYS's hourly login cap was reached (H084)",
		e.Until.Format(time.RFC3339))
}

// Unwrap gives İYS's H084 answer.
func (e *LoginPausedError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// Class is consent.ClassLoginLimit.
func (e *LoginPausedError) Class() consent.Class { return consent.ClassLoginLimit }

// Errors of the client itself, for errors.Is.
var (
	// ErrLoginRefused: İYS refused the username and password. It wraps İYS's
	// *APIError. No retry helps; the configuration must change.
	ErrLoginRefused = errors.New("iys: login refused: check the API username and password")
	// ErrNoRecord: İYS holds no consent for the queried key.
	ErrNoRecord = errors.New("iys: no consent record")
	// ErrBulkSize: a bulk request must hold 1 to consent.MaxBulkSize consents.
	ErrBulkSize = errors.New("iys: bulk request size out of range")
	// ErrDuplicateKey: a bulk request held one recipient + recipientType + type twice.
	ErrDuplicateKey = errors.New("iys: same recipient, recipient type and type twice in one bulk request")
)

// ErrorClass tells what any error of this package means for the caller:
// İYS's verdicts by their code, login trouble, our own bugs, and network
// errors and cancellations as transient (the record stays pending).
func ErrorClass(err error) consent.Class {
	var (
		paused *LoginPausedError
		apiErr *APIError
		match  *BulkMatchError
		netErr net.Error
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &paused):
		return consent.ClassLoginLimit
	case errors.Is(err, ErrLoginRefused):
		return consent.ClassConfiguration
	case errors.As(err, &apiErr):
		return apiErr.Class()
	case errors.Is(err, ErrBulkSize), errors.Is(err, ErrDuplicateKey):
		return consent.ClassOurBug
	case errors.As(err, &match):
		return consent.ClassUnknown
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return consent.ClassTransient
	}
	return consent.ClassUnknown
}

// isCertError tells a certificate failure, which no retry mends.
func isCertError(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}
