package iysclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Record is a consent as İYS holds it: the answer of a status query and an
// entry of the changes feed. Source may be a citizen-side IYS_* one, known
// or not.
type Record struct {
	Recipient     string                `json:"recipient"`
	RecipientType consent.RecipientType `json:"recipientType"`
	Type          consent.Type          `json:"type"`
	Status        consent.Status        `json:"status"`
	Source        consent.Source        `json:"source"`
	ConsentDate   consent.Date          `json:"consentDate"`  // strict: İYS's documented layout
	CreationDate  consent.Date          `json:"creationDate"` // lenient: when İYS recorded it
	TransactionID string                `json:"transactionId"`
}

// UnmarshalJSON reads creationDate leniently and the rest strictly.
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	var w struct {
		plain
		CreationDate  lenientDate `json:"creationDate"`
		TransactionID flexString  `json:"transactionId"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Record(w.plain)
	r.CreationDate = consent.Date(w.CreationDate)
	r.TransactionID = string(w.TransactionID)
	return nil
}

// Transaction is İYS's receipt for one recorded consent.
type Transaction struct {
	TransactionID string
	CreationDate  consent.Date
}

type wireTransaction struct {
	TransactionID flexString  `json:"transactionId"`
	CreationDate  lenientDate `json:"creationDate"`
}

// AddConsent records one consent synchronously. A refusal by İYS's rules
// is an *APIError whose Class is the outcome (H174 already_in_iys...).
func (c *Client) AddConsent(ctx context.Context, iysCode, brandCode string, cn consent.Consent) (*Transaction, error) {
	if err := checkSegments([]string{"iys code", "brand code"}, iysCode, brandCode); err != nil {
		return nil, fmt.Errorf("add consent: %w", err)
	}
	c.log.Debug("adding one consent", zap.String("recipient", consent.MaskRecipient(cn.Recipient)),
		zap.String("type", string(cn.Type)), zap.String("status", string(cn.Status)))
	var w wireTransaction
	err := c.do(ctx, call{name: "add consent", method: http.MethodPost,
		path: pathAddConsent(iysCode, brandCode), body: cn}, &w)
	if err != nil {
		return nil, fmt.Errorf("add consent: %w", err)
	}
	return &Transaction{TransactionID: string(w.TransactionID), CreationDate: consent.Date(w.CreationDate)}, nil
}

// StatusQuery names one record: a recipient's consent of one type.
type StatusQuery struct {
	Recipient     string                `json:"recipient"`
	RecipientType consent.RecipientType `json:"recipientType"`
	Type          consent.Type          `json:"type"`
}

// ConsentStatus asks İYS for one record. When İYS holds none the error
// matches ErrNoRecord (and *APIError). İYS allows about 100 of these per
// hour per IP [seen]: use RecipientsStatus for many.
//
// [guess] İYS's "no record" answer is not documented: a 404 or the
// placeholder code consent.CodeNotFound is taken for it.
func (c *Client) ConsentStatus(ctx context.Context, iysCode, brandCode string, q StatusQuery) (*Record, error) {
	if err := checkSegments([]string{"iys code", "brand code"}, iysCode, brandCode); err != nil {
		return nil, fmt.Errorf("consent status: %w", err)
	}
	var r Record
	err := c.do(ctx, call{name: "consent status", method: http.MethodPost,
		path: pathConsentStatus(iysCode, brandCode), body: q}, &r)
	var apiErr *APIError
	if errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.hasCode(consent.CodeNotFound)) {
		return nil, fmt.Errorf("consent status: %w: %w", ErrNoRecord, err)
	}
	if err != nil {
		return nil, fmt.Errorf("consent status: %w", err)
	}
	return &r, nil
}

// RecipientsStatus asks which of recipients hold an ONAY of type t at İYS,
// and returns those [seen]. İYS's limit on the list's length is not known.
func (c *Client) RecipientsStatus(ctx context.Context, iysCode, brandCode string, rt consent.RecipientType, t consent.Type, recipients []string) ([]string, error) {
	if err := checkSegments([]string{"iys code", "brand code", "recipient type", "type"},
		iysCode, brandCode, string(rt), string(t)); err != nil {
		return nil, fmt.Errorf("recipients status: %w", err)
	}
	if len(recipients) == 0 {
		return nil, nil
	}
	var w struct {
		List []json.RawMessage `json:"list"`
	}
	err := c.do(ctx, call{name: "recipients status", method: http.MethodPost,
		path: pathRecipientsStatus(iysCode, brandCode, rt, t),
		body: map[string][]string{"recipients": recipients}}, &w)
	if err != nil {
		return nil, fmt.Errorf("recipients status: %w", err)
	}
	out := make([]string, 0, len(w.List))
	for _, raw := range w.List {
		r, err := listedRecipient(raw)
		if err != nil {
			return nil, fmt.Errorf("recipients status: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// listedRecipient reads an entry of the ONAY list: [seen] a string, but an
// object with a recipient field is taken too.
func listedRecipient(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var o struct {
		Recipient string `json:"recipient"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Recipient != "" {
		return o.Recipient, nil
	}
	return "", fmt.Errorf("decode answer: list entry is neither a recipient nor {recipient}: %.20s", strings.TrimSpace(string(raw)))
}
