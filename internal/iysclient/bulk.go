package iysclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Bulk requests are matched to their consents by subrequestId only, never
// by index or position: İYS's index counts from 1 and the order of its
// lists is not promised, and integrations that assumed either got it wrong.
//
// The subrequestId of each sent consent comes from the submit answer, whose
// subRequests echo every consent. The echo is matched back by the record key
// (recipient, recipientType, type): a request may not hold one key twice
// (SubmitBulk refuses that before sending), so the key names exactly one
// sent consent. Any doubt (a key not sent, one key twice, a count that
// differs, a missing or repeated subrequestId) fails loudly with a
// *BulkMatchError carrying the requestId, rather than guessing.

// BulkItem is one sent consent and the subrequestId İYS gave it.
type BulkItem struct {
	SubrequestID string
	Consent      consent.Consent
}

// BulkRequest is an accepted bulk request. Save RequestID (with the items'
// subrequestIds) before polling: after a crash, poll it again instead of
// sending the consents twice.
type BulkRequest struct {
	RequestID string
	Items     []BulkItem // in the order of the sent consents
}

// BulkMatchError says İYS accepted a bulk request whose answer could not be
// matched to the sent consents. The request exists at İYS: keep RequestID.
type BulkMatchError struct {
	RequestID string
	Reason    string // recipients in it are masked
}

func (e *BulkMatchError) Error() string {
	return fmt.Sprintf("iys: bulk request %q: answer does not match the sent consents: %s", e.RequestID, e.Reason)
}

type wireSubmit struct {
	RequestID   flexString `json:"requestId"`
	SubRequests []struct {
		SubrequestID  flexString `json:"subrequestId"`
		Recipient     string     `json:"recipient"`
		RecipientType string     `json:"recipientType"`
		Type          string     `json:"type"`
	} `json:"subRequests"`
}

// SubmitBulk sends 1..consent.MaxBulkSize consents as one asynchronous
// request. It refuses an empty or too large list and a key twice
// (ErrBulkSize, ErrDuplicateKey) without sending. The POST is retried like
// any call: İYS's rules make a resend harmless (the same status twice is
// H174, already in İYS).
func (c *Client) SubmitBulk(ctx context.Context, iysCode, brandCode string, items []consent.Consent) (*BulkRequest, error) {
	if err := checkSegments([]string{"iys code", "brand code"}, iysCode, brandCode); err != nil {
		return nil, fmt.Errorf("submit bulk: %w", err)
	}
	index, err := indexBulk(items)
	if err != nil {
		return nil, fmt.Errorf("submit bulk: %w", err)
	}
	var w wireSubmit
	err = c.do(ctx, call{name: "submit bulk", method: http.MethodPost,
		path: pathSubmitBulk(iysCode, brandCode), body: items, paced: true}, &w)
	if err != nil {
		return nil, fmt.Errorf("submit bulk: %w", err)
	}
	req, err := matchEcho(w, items, index)
	if err != nil {
		return nil, fmt.Errorf("submit bulk: %w", err)
	}
	c.log.Info("İYS accepted a bulk request", zap.String("request_id", req.RequestID), zap.Int("size", len(items)))
	return req, nil
}

// matchKey is a record key as compared with İYS's echo: trimmed, lower-case
// and without the phone's "+", so that İYS's own normalisation of the echo
// cannot break the match.
type matchKey struct{ recipient, recipientType, typ string }

func keyOf(recipient, recipientType, typ string) matchKey {
	r := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(recipient)), "+")
	return matchKey{r, strings.ToUpper(strings.TrimSpace(recipientType)), strings.ToUpper(strings.TrimSpace(typ))}
}

func indexBulk(items []consent.Consent) (map[matchKey]int, error) {
	if len(items) == 0 || len(items) > consent.MaxBulkSize {
		return nil, fmt.Errorf("%w: %d consents, want 1 to %d", ErrBulkSize, len(items), consent.MaxBulkSize)
	}
	index := make(map[matchKey]int, len(items))
	for i, it := range items {
		k := keyOf(it.Recipient, string(it.RecipientType), string(it.Type))
		if j, dup := index[k]; dup {
			return nil, fmt.Errorf("%w: items %d and %d (%s %s %s)", ErrDuplicateKey, j, i,
				consent.MaskRecipient(it.Recipient), it.RecipientType, it.Type)
		}
		index[k] = i
	}
	return index, nil
}

func matchEcho(w wireSubmit, items []consent.Consent, index map[matchKey]int) (*BulkRequest, error) {
	id := string(w.RequestID)
	if id == "" {
		return nil, &BulkMatchError{Reason: "no requestId in the answer"}
	}
	fail := func(format string, args ...any) error {
		return &BulkMatchError{RequestID: id, Reason: fmt.Sprintf(format, args...)}
	}
	if len(w.SubRequests) != len(items) {
		return nil, fail("%d subRequests for %d consents sent", len(w.SubRequests), len(items))
	}
	out := &BulkRequest{RequestID: id, Items: make([]BulkItem, len(items))}
	seen := make(map[string]bool, len(items))
	for n, s := range w.SubRequests {
		sub := string(s.SubrequestID)
		switch {
		case sub == "":
			return nil, fail("subRequests[%d] has no subrequestId", n)
		case seen[sub]:
			return nil, fail("subrequestId %q appears twice", sub)
		}
		seen[sub] = true
		i, ok := index[keyOf(s.Recipient, s.RecipientType, s.Type)]
		if !ok {
			return nil, fail("subRequests[%d] (%s %s %s) echoes no sent consent", n,
				consent.MaskRecipient(s.Recipient), s.RecipientType, s.Type)
		}
		if out.Items[i].SubrequestID != "" {
			return nil, fail("subRequests[%d] echoes sent consent %d a second time", n, i)
		}
		out.Items[i] = BulkItem{SubrequestID: sub, Consent: items[i]}
	}
	return out, nil
}

// ResultStatus is the state of one consent of a bulk request.
type ResultStatus string

// Result states [doc].
const (
	ResultEnqueue ResultStatus = "enqueue" // not processed yet: poll again
	ResultSuccess ResultStatus = "success"
	ResultFailure ResultStatus = "failure"
)

// BulkResult is İYS's word on one consent of a bulk request.
type BulkResult struct {
	Index         int // as İYS writes it, counting from 1: never match by it
	SubrequestID  string
	Status        ResultStatus
	TransactionID string
	CreationDate  consent.Date
	Error         *ItemError // with a failure
}

// Done reports whether İYS has processed the consent. An unknown status is
// taken as not done, so nothing is concluded from it.
func (r BulkResult) Done() bool { return r.Status == ResultSuccess || r.Status == ResultFailure }

// Class is the outcome of a processed consent: accepted, or its İYS code's
// class (H174 already_in_iys, H178 superseded...); transient while not done.
func (r BulkResult) Class() consent.Class {
	switch r.Status {
	case ResultSuccess:
		return consent.ClassAccepted
	case ResultFailure:
		if r.Error == nil {
			return consent.ClassUnknown
		}
		return consent.Classify(r.Error.Code)
	}
	return consent.ClassTransient
}

type wireBulkResult struct {
	Index         flexInt        `json:"index"`
	SubrequestID  flexString     `json:"subrequestId"`
	Status        string         `json:"status"`
	TransactionID flexString     `json:"transactionId"`
	CreationDate  lenientDate    `json:"creationDate"`
	Error         *wireItemError `json:"error"`
}

// BulkResults fetches the state of every consent of a bulk request, in the
// order İYS gives them. Match them with MatchResults.
func (c *Client) BulkResults(ctx context.Context, iysCode, brandCode, requestID string) ([]BulkResult, error) {
	if err := checkSegments([]string{"iys code", "brand code", "request id"}, iysCode, brandCode, requestID); err != nil {
		return nil, fmt.Errorf("bulk results: %w", err)
	}
	var raw json.RawMessage
	err := c.do(ctx, call{name: "bulk results", method: http.MethodGet,
		path: pathBulkStatus(iysCode, brandCode, requestID)}, &raw)
	if err != nil {
		return nil, fmt.Errorf("bulk results: %w", err)
	}
	var ws []wireBulkResult
	if err := decodeList(raw, &ws); err != nil {
		return nil, fmt.Errorf("bulk results: decode answer: %w", err)
	}
	out := make([]BulkResult, len(ws))
	for i, w := range ws {
		out[i] = BulkResult{
			Index:         int(w.Index),
			SubrequestID:  string(w.SubrequestID),
			Status:        ResultStatus(strings.ToLower(strings.TrimSpace(w.Status))),
			TransactionID: string(w.TransactionID),
			CreationDate:  consent.Date(w.CreationDate),
		}
		if w.Error != nil {
			e := w.Error.item()
			out[i].Error = &e
		}
	}
	return out, nil
}

// BulkDone reports whether every consent of a bulk request is processed.
// An empty list is not done: İYS lists every consent of a request.
func BulkDone(results []BulkResult) bool {
	for _, r := range results {
		if !r.Done() {
			return false
		}
	}
	return len(results) > 0
}

// WaitBulk polls a bulk request every interval until BulkDone or ctx is done.
func (c *Client) WaitBulk(ctx context.Context, iysCode, brandCode, requestID string, every time.Duration) ([]BulkResult, error) {
	if every <= 0 {
		return nil, fmt.Errorf("wait bulk: interval %v is not positive", every)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait bulk: %w", ctx.Err())
		case <-t.C:
		}
		res, err := c.BulkResults(ctx, iysCode, brandCode, requestID)
		if err != nil {
			return nil, fmt.Errorf("wait bulk: %w", err)
		}
		if BulkDone(res) {
			return res, nil
		}
		t.Reset(every)
	}
}

// ItemResult is a sent consent with İYS's result for it.
type ItemResult struct {
	BulkItem
	Result BulkResult
}

// MatchResults pairs each sent item with its result by subrequestId only,
// in the items' order. A result for no item, two results for one, or an
// item without a result is an error: nothing is guessed.
func MatchResults(items []BulkItem, results []BulkResult) ([]ItemResult, error) {
	pos := make(map[string]int, len(items))
	for i, it := range items {
		if it.SubrequestID == "" {
			return nil, fmt.Errorf("match results: item %d has no subrequestId", i)
		}
		if _, dup := pos[it.SubrequestID]; dup {
			return nil, fmt.Errorf("match results: subrequestId %q on two items", it.SubrequestID)
		}
		pos[it.SubrequestID] = i
	}
	out := make([]ItemResult, len(items))
	got := make([]bool, len(items))
	for _, r := range results {
		i, ok := pos[r.SubrequestID]
		switch {
		case !ok:
			return nil, fmt.Errorf("match results: result for unknown subrequestId %q", r.SubrequestID)
		case got[i]:
			return nil, fmt.Errorf("match results: two results for subrequestId %q", r.SubrequestID)
		}
		got[i] = true
		out[i] = ItemResult{BulkItem: items[i], Result: r}
	}
	for i, ok := range got {
		if !ok {
			return nil, fmt.Errorf("match results: no result for subrequestId %q", items[i].SubrequestID)
		}
	}
	return out, nil
}

// RefusedItem is a consent of a bulk request İYS refused whole, as its
// errors list names it.
type RefusedItem struct {
	Position int // in the sent consents, counting from 0
	Code     consent.Code
	Message  string
}

// RefusedItems maps the errors list of a bulk request refused whole (see
// APIError.RefusedForItems) to the sent consents. Each entry's index counts
// from 1 [doc]; an entry that echoes its value must find that value in the
// consent at its index (the recipient compared as subrequests are matched).
// ok is false, and nothing is concluded, when the list is empty or any entry
// names no consent for sure: no index, one out of range, a value that is not
// that consent's. Two entries on one consent give it the first one's code.
func RefusedItems(items []consent.Consent, e *APIError) (named []RefusedItem, ok bool) {
	if len(e.Errors) == 0 {
		return nil, false
	}
	seen := make(map[int]bool, len(e.Errors))
	for _, it := range e.Errors {
		if it.Index == nil || *it.Index < 1 || *it.Index > len(items) {
			return nil, false
		}
		pos := *it.Index - 1
		if !echoes(items[pos], it) {
			return nil, false
		}
		if !seen[pos] {
			seen[pos] = true
			named = append(named, RefusedItem{Position: pos, Code: it.Code, Message: it.Message})
		}
	}
	return named, true
}

// echoes reports whether an error entry's value, if it has one, is a value
// of the consent: of the field its location names, or of any field when it
// names none İYS's consents have. A value that is not a string never is.
func echoes(c consent.Consent, it ItemError) bool {
	raw := bytes.TrimSpace(it.Value)
	if len(raw) == 0 || bytes.Equal(raw, jsonNull) {
		return true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	fields := map[string]string{
		"recipient":     keyOf(c.Recipient, "", "").recipient,
		"recipientType": string(c.RecipientType),
		"type":          string(c.Type),
		"status":        string(c.Status),
		"source":        string(c.Source),
		"consentDate":   c.ConsentDate.String(),
	}
	norm := func(field, s string) string {
		if field == "recipient" {
			return keyOf(s, "", "").recipient
		}
		return strings.ToUpper(strings.TrimSpace(s))
	}
	for i := len(it.Location) - 1; i >= 0; i-- {
		if want, ok := fields[it.Location[i]]; ok {
			return norm(it.Location[i], v) == norm(it.Location[i], want)
		}
	}
	for f, want := range fields {
		if norm(f, v) == norm(f, want) {
			return true
		}
	}
	return false
}
