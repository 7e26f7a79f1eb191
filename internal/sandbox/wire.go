package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Body limits: a full bulk request of long email addresses stays far below
// maxBulkBody, so that 1001 consents still get İYS's H125 and not a 413.
const (
	maxSmallBody = 64 << 10
	maxBulkBody  = 16 << 20
)

// apiError is one entry of İYS's error answer. Code is empty where İYS
// publishes no code (an unreadable body): the sandbox does not invent one.
type apiError struct {
	Code     consent.Code `json:"code,omitempty"`
	Message  string       `json:"message"`
	Location []string     `json:"location,omitempty"`
	Value    any          `json:"value,omitempty"`
	Index    int          `json:"index,omitempty"` // item of a bulk request, counting from 1
}

// messages are the sandbox's wording of İYS's codes.
var messages = map[consent.Code]string{
	consent.CodeUnknownType:          "unknown consent type: want MESAJ, ARAMA or EPOSTA",
	consent.CodeUnknownStatus:        "unknown status: want ONAY or RET",
	consent.CodeUnknownSource:        "unknown or unfitting source",
	consent.CodeUnknownRecipient:     "unknown recipient",
	consent.CodeUnknownRecipientType: "unknown recipient type: want BIREYSEL or TACIR",
	consent.CodeBefore2015:           "consent date is before 2015-05-01 00:00:00",
	consent.CodeBadHS2015Date:        "HS_2015 takes only the date 2015-05-01 00:00:00",
	consent.CodeBadDate:              "consent date is not a real calendar time",
	consent.CodeBadDateFormat:        "consent date must be YYYY-MM-DD HH:MM:SS",
	consent.CodeFutureDate:           "consent date is in the future",
	consent.CodeBadEmail:             "invalid email address",
	consent.CodeBadPhone:             "invalid phone number: want + and the country code, E.164",
	consent.CodeNoRecipient:          "recipient is missing",
	consent.CodeSameStatus:           "the same status is already recorded",
	consent.CodeFirstIsRet:           "the first record of a recipient cannot be RET",
	consent.CodeNewerHeld:            "a newer consent is already recorded",
	consent.CodeTooOld:               "consent given more than 3 business days ago",
	consent.CodeTooMany:              "more than 1000 consents in one request",
	consent.CodeDuplicateInRequest:   "recipient repeated in one request",
	consent.CodeRateLimited:          "too many requests",
	consent.CodeRateLimited2:         "too many requests",
	consent.CodeLoginLimit:           "too many logins: try again in about an hour",
	consent.CodeBadToken:             "missing, invalid or expired token",
	consent.CodeNotPermitted:         "not permitted for this brand",
	consent.CodeNotPermitted2:        "not permitted for this code",
	consent.CodeNotFound:             "not found",
}

// codeField is where each value code points, for the error's location.
var codeField = map[consent.Code]string{
	consent.CodeUnknownType: "type", consent.CodeUnknownStatus: "status", consent.CodeUnknownSource: "source",
	consent.CodeUnknownRecipient: "recipient", consent.CodeUnknownRecipientType: "recipientType",
	consent.CodeBefore2015: "consentDate", consent.CodeBadHS2015Date: "consentDate", consent.CodeBadDate: "consentDate",
	consent.CodeBadDateFormat: "consentDate", consent.CodeFutureDate: "consentDate",
	consent.CodeBadEmail: "recipient", consent.CodeBadPhone: "recipient", consent.CodeNoRecipient: "recipient",
}

// fieldCode is the code of a JSON value of the wrong kind (a number for a
// string...), per field.
var fieldCode = map[string]consent.Code{
	"type": consent.CodeUnknownType, "status": consent.CodeUnknownStatus, "source": consent.CodeUnknownSource,
	"recipient": consent.CodeUnknownRecipient, "recipientType": consent.CodeUnknownRecipientType,
	"consentDate": consent.CodeBadDateFormat,
}

// codeError builds the error entry of a code.
func codeError(code consent.Code) apiError {
	e := apiError{Code: code, Message: messages[code]}
	if e.Message == "" {
		e.Message = string(code)
	}
	if f := codeField[code]; f != "" {
		e.Location = []string{f}
	}
	return e
}

// codeStatus is the HTTP status of a refusal: 422 for a value İYS cannot
// take, 400 for a rule against what it holds or a bad request (docs/iys-api.md
// allows both and says duplicates are 400; the split is the sandbox's).
func codeStatus(code consent.Code) int {
	if consent.Classify(code) == consent.ClassInvalid {
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing left to tell
}

func writeErrors(w http.ResponseWriter, status int, errs ...apiError) {
	writeJSON(w, status, map[string][]apiError{"errors": errs})
}

func writeCode(w http.ResponseWriter, code consent.Code) {
	writeErrors(w, codeStatus(code), codeError(code))
}

// readJSON decodes a request body of at most limit bytes into v. On failure
// it answers the client itself and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return true
		}
		err = errors.New("data after the JSON value")
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		writeErrors(w, http.StatusRequestEntityTooLarge, apiError{Message: fmt.Sprintf("body larger than %d bytes", limit)})
	case errors.As(err, &typeErr) && fieldCode[typeErr.Field] != "":
		writeCode(w, fieldCode[typeErr.Field])
	case errors.Is(err, io.EOF):
		writeErrors(w, http.StatusBadRequest, apiError{Message: "empty body: want JSON"})
	default:
		writeErrors(w, http.StatusBadRequest, apiError{Message: "unreadable JSON body: " + err.Error()})
	}
	return false
}

// wireConsent is a consent as İYS receives it, kept as sent: every field is
// read as text so that each bad value gets its own code, and the bulk answer
// echoes the consent unchanged.
type wireConsent struct {
	ConsentDate    string  `json:"consentDate"`
	Source         string  `json:"source"`
	Recipient      string  `json:"recipient"`
	RecipientType  string  `json:"recipientType"`
	Status         string  `json:"status"`
	Type           string  `json:"type"`
	RetailerCode   *int64  `json:"retailerCode,omitempty"`
	RetailerAccess []int64 `json:"retailerAccess,omitempty"`
}

// parse turns a wire consent into the domain's, with the recipient in the
// form records are keyed by (emails trimmed and lower-cased). dateCode is
// the date's own parse error, which consent.Validate only sees as "no date".
func (wc *wireConsent) parse() (c consent.Consent, dateCode consent.Code) {
	c = consent.Consent{
		Recipient:     wc.Recipient,
		RecipientType: consent.RecipientType(wc.RecipientType),
		Type:          consent.Type(wc.Type),
		Status:        consent.Status(wc.Status),
		Source:        consent.Source(wc.Source),
	}
	if c.Type == consent.TypeEposta {
		if e, err := consent.NormalizeEmail(c.Recipient); err == nil {
			c.Recipient = e
		}
	}
	c.ConsentDate, dateCode = parseConsentDate(wc.ConsentDate)
	return c, dateCode
}

// parseConsentDate reads İYS's date: H158 when the text is not shaped
// YYYY-MM-DD HH:MM:SS (a trailing space is enough), H157 when it is shaped
// so but no real time.
func parseConsentDate(s string) (consent.Date, consent.Code) {
	d, err := consent.ParseDate(s)
	switch {
	case err == nil:
		return d, ""
	case dateShaped(s):
		return consent.Date{}, consent.CodeBadDate
	}
	return consent.Date{}, consent.CodeBadDateFormat
}

func dateShaped(s string) bool {
	const shape = "dddd-dd-dd dd:dd:dd"
	if len(s) != len(shape) {
		return false
	}
	for i := range len(shape) {
		if shape[i] == 'd' && (s[i] < '0' || s[i] > '9') || shape[i] != 'd' && s[i] != shape[i] {
			return false
		}
	}
	return true
}

// verdict is İYS's code for c against held at now: consent.Evaluate, with
// the finer codes the domain cannot tell (the date's parse error, a missing
// recipient).
func verdict(held *consent.Held, c consent.Consent, dateCode consent.Code, now consent.Date) consent.Code {
	return refine(consent.Evaluate(held, c, now), c, dateCode)
}

func refine(code consent.Code, c consent.Consent, dateCode consent.Code) consent.Code {
	switch {
	case code == consent.CodeBadDateFormat && dateCode != "":
		return dateCode
	case (code == consent.CodeBadEmail || code == consent.CodeBadPhone) && strings.TrimSpace(c.Recipient) == "":
		return consent.CodeNoRecipient
	}
	return code
}

// farFuture disables the future-date rule when only the shape is checked.
var farFuture = consent.NewDate(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))

// malformed is the code of a consent İYS cannot read as one: an unknown
// value, a bad recipient, an unreadable date. Such a consent refuses a bulk
// request whole. The date's range (H155, H156, H162) depends on the clock
// and, like the rules on what İYS holds, is a verdict on the item when it is
// processed.
func malformed(c consent.Consent, dateCode consent.Code) consent.Code {
	code := refine(c.Validate(farFuture), c, dateCode)
	switch code {
	case consent.CodeBefore2015, consent.CodeBadHS2015Date, consent.CodeFutureDate:
		return ""
	}
	return code
}

// formatDate writes a moment in İYS's format, Türkiye time.
func formatDate(t time.Time) string { return consent.NewDate(t).String() }
