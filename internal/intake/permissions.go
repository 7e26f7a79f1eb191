package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
)

// The permission check: GET /v1/connectors/{brandCode}/permissions asks for
// one recipient, POST for up to MaxPermissionRecipients at once. Each answer
// says whether a commercial message may go to the recipient now: only on an
// ONAY that İYS holds.

// Limits of a batch check.
const (
	// MaxPermissionRecipients is the most recipients one POST may ask for.
	MaxPermissionRecipients = 10000
	// maxPermissionBytes bounds its body: 10,000 addresses of 254 characters.
	maxPermissionBytes = 4 << 20
)

// Statuses of a Permission: the record's (ONAY, RET) or PermissionNone.
const PermissionNone = "NONE"

// Permission is the answer for one recipient. Recipient is as stored (E.164
// for a phone, lower-cased for an email); ConsentDate and Source are the
// record's newest consent ("" for NONE); AsOf is when the records were read.
// Times are RFC 3339 in Türkiye time.
type Permission struct {
	Recipient     string `json:"recipient"`
	Type          string `json:"type"`
	RecipientType string `json:"recipientType"`
	Status        string `json:"status"`
	Allowed       bool   `json:"allowed"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
	SyncedToIYS   bool   `json:"syncedToIys"`
	AsOf          string `json:"asOf"`
}

// PermissionsResponse is the answer of a batch check, in request order.
type PermissionsResponse struct {
	Results []Permission `json:"results"`
}

// permissionsRequest is the body of a batch check.
type permissionsRequest struct {
	Type          string    `json:"type"`
	RecipientType string    `json:"recipientType"`
	Recipients    *[]string `json:"recipients"`
}

// Parameters and fields of a check, as errors name them.
const (
	fieldRecipient  = "recipient"
	fieldRecipients = "recipients"
)

// allowed tells whether a commercial message may go on the record's
// consent. A record holds only its newest consent, and only a synced one
// (sent and accepted, or pulled from İYS) is known to be what İYS holds. A
// pending ONAY is not, whatever was synced before it: İYS may hold an older
// RET, or a citizen's RET newer than our last sync but older than this ONAY,
// which the pull does not apply over it. So it is allowed only with
// allowPending (in flight is pending that is being sent). An ONAY İYS
// refused (rejected) or that spent its retries (failed) is not in İYS, and
// a RET is never allowed, pending or not.
func allowed(p store.Permission, allowPending bool) bool {
	if p.Status != consent.StatusOnay {
		return false
	}
	switch p.State {
	case consent.StateSynced:
		return true
	case consent.StatePending, consent.StateInFlight:
		return allowPending
	}
	return false
}

// permissionQuery is what a check asks: the type, the recipient type and
// the recipients, normalised as stored.
type permissionQuery struct {
	typ        consent.Type
	rt         consent.RecipientType
	recipients []string
}

// checkType reads the type of a check, which must be a channel of the connector.
func checkType(conn store.Connector, s string) (consent.Type, error) {
	if s == "" {
		return "", errors.New("is missing: give MESAJ, ARAMA or EPOSTA")
	}
	typ, err := consent.ParseType(s)
	if err != nil {
		return "", errors.New("must be MESAJ, ARAMA or EPOSTA, in capitals")
	}
	for _, c := range conn.Channels {
		if c == typ {
			return typ, nil
		}
	}
	return "", fmt.Errorf("%s is not a channel of this connector, which has %s: no record of it is kept", typ,
		consent.JoinTypes(conn.Channels, ","))
}

// checkRecipientType reads the recipient type of a check: "" is the connector's.
func checkRecipientType(conn store.Connector, s string) (consent.RecipientType, error) {
	if s == "" {
		return conn.RecipientType, nil
	}
	rt, err := consent.ParseRecipientType(s)
	if err != nil {
		return "", errors.New("must be BIREYSEL or TACIR, in capitals, or absent for the connector's default")
	}
	return rt, nil
}

// permissions is GET and POST /v1/connectors/{brandCode}/permissions.
func (h *Handler) permissions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := h.exchange(w, r, "permission check")
	conn, _, ok := h.admit(x, http.MethodGet, http.MethodPost)
	if !ok {
		return
	}
	var (
		q      permissionQuery
		single bool
		field  string
		err    error
	)
	if r.Method == http.MethodGet {
		single = true
		q, field, err = readPermissionParams(conn, r.URL.Query())
	} else {
		if mt, _, merr := mime.ParseMediaType(r.Header.Get("Content-Type")); merr != nil || mt != "application/json" {
			x.fail(http.StatusUnsupportedMediaType, "unsupported_media_type",
				`the body must be {"type", "recipients": [...]} sent as Content-Type: application/json`)
			return
		}
		q, field, err = readPermissionBody(conn, w, r)
	}
	if err != nil {
		status, code := http.StatusBadRequest, "bad_request"
		if errors.Is(err, errTooMany) || errors.Is(err, errBodyTooLarge) {
			status, code = http.StatusRequestEntityTooLarge, "too_large"
		}
		msg := err.Error()
		if field != "" {
			msg = field + ": " + msg
		}
		x.failField(status, code, field, msg)
		return
	}
	held, err := h.st.Permissions(r.Context(), conn.ID, q.rt, q.typ, q.recipients)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		x.dbFailed(err, "nothing was checked", "the records could not be read")
		return
	}
	asOf := rfc3339(time.Now())
	results := make([]Permission, len(q.recipients))
	for i, rcpt := range q.recipients {
		p := Permission{Recipient: rcpt, Type: string(q.typ), RecipientType: string(q.rt), Status: PermissionNone, AsOf: asOf}
		if rec, ok := held[rcpt]; ok {
			p.Status, p.Source = string(rec.Status), string(rec.Source)
			p.ConsentDate = rfc3339(rec.ConsentDate.Time())
			p.SyncedToIYS = rec.State == consent.StateSynced
			p.Allowed = allowed(rec, h.allowPending)
		}
		results[i] = p
	}
	x.log.Debug("permission check answered", zap.Int("recipients", len(results)), zap.Int("held", len(held)),
		zap.Duration("took", time.Since(start)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var body any = PermissionsResponse{Results: results}
	if single {
		body = results[0]
	}
	if err := enc.Encode(body); err != nil {
		x.log.Debug("permission check: write response", zap.Error(err))
	}
}

// readPermissionParams reads the query of a single check: type, recipient
// and recipientType, each at most once, and no other. On an error, field
// names the parameter at fault.
func readPermissionParams(conn store.Connector, params url.Values) (q permissionQuery, field string, err error) {
	for name, vs := range params {
		switch name {
		case "type", fieldRecipient, FieldRecipientType:
		default:
			if len(name) > 40 {
				name = name[:40] + "..."
			}
			return q, name, errors.New("is not a parameter: want type, recipient and recipientType")
		}
		if len(vs) > 1 {
			return q, name, errors.New("is given more than once")
		}
	}
	if q.typ, err = checkType(conn, params.Get("type")); err != nil {
		return q, "type", err
	}
	if q.rt, err = checkRecipientType(conn, params.Get(FieldRecipientType)); err != nil {
		return q, FieldRecipientType, err
	}
	rcpt := params.Get(fieldRecipient)
	if rcpt == "" {
		return q, fieldRecipient, errors.New("is missing: give the phone number (digits or E.164) or email address")
	}
	if rcpt, err = consent.NormalizeRecipient(q.typ, rcpt); err != nil {
		return q, fieldRecipient, err
	}
	q.recipients = []string{rcpt}
	return q, "", nil
}

// A batch too large to read.
var (
	errTooMany      = fmt.Errorf("holds more than %d recipients: send smaller batches", MaxPermissionRecipients)
	errBodyTooLarge = fmt.Errorf("the body is over %d bytes: send smaller batches", maxPermissionBytes)
)

// readPermissionBody reads the body of a batch check: {"type",
// "recipientType", "recipients"}. On an error, field names what is at fault
// (recipients[3] for one recipient), or is "" for the body as a whole.
func readPermissionBody(conn store.Connector, w http.ResponseWriter, r *http.Request) (q permissionQuery, field string, err error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPermissionBytes))
	dec.DisallowUnknownFields()
	var body permissionsRequest
	if err := dec.Decode(&body); err != nil {
		var maxErr *http.MaxBytesError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			return q, "", errBodyTooLarge
		case errors.As(err, &typ) && typ.Field != "":
			f := fieldName(typ.Field)
			if f == fieldRecipients {
				return q, f, errors.New("must be an array of strings")
			}
			return q, f, errors.New("must be a string")
		case errors.Is(err, io.EOF):
			return q, "", errors.New(`the body is empty: want {"type", "recipients": [...]}`)
		}
		return q, "", errors.New(`the body is not {"type", "recipientType", "recipients": [...]} in JSON (no other field)`)
	}
	if dec.More() {
		return q, "", errors.New("the body holds more than one JSON value")
	}
	if q.typ, err = checkType(conn, body.Type); err != nil {
		return q, "type", err
	}
	if q.rt, err = checkRecipientType(conn, body.RecipientType); err != nil {
		return q, FieldRecipientType, err
	}
	if body.Recipients == nil {
		return q, fieldRecipients, errors.New("is missing: give an array of up to 10,000 phone numbers or email addresses")
	}
	in := *body.Recipients
	if len(in) > MaxPermissionRecipients {
		return q, fieldRecipients, errTooMany
	}
	q.recipients = make([]string, len(in))
	for i, s := range in {
		if q.recipients[i], err = consent.NormalizeRecipient(q.typ, s); err != nil {
			return q, fmt.Sprintf("%s[%d]", fieldRecipients, i), err
		}
	}
	return q, "", nil
}
