package iysclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// ChangeSource picks whose changes the feed gives.
type ChangeSource string

// Feed sources [doc].
const (
	ChangesByCitizens ChangeSource = "IYS" // made through İYS: web, mobile, 3338, call center...
	ChangesByBrand    ChangeSource = "HS"  // the brand's own
)

// ChangesQuery is one page request of the changes feed. After is the
// opaque cursor İYS returned last time for this brand, sent back as it
// came ("" for the start of the 7 days İYS keeps); never build one from a
// date. Limit 0 leaves İYS's default.
type ChangesQuery struct {
	Source ChangeSource
	After  string
	Limit  int
}

// ChangesPage is one page of the feed, ordered by creation. Store After per
// brand and send it back; when İYS gives none, keep the previous cursor.
// The page's length says nothing of the feed's end: İYS may answer fewer
// changes than the limit asked while more follow.
type ChangesPage struct {
	After string
	// Entries are the page's changes as İYS sent them, each to be read on
	// its own with DecodeChange: one entry that cannot be read must not
	// sink the page.
	Entries []json.RawMessage
}

// Changes reads one page of the changes feed. The feed covers the last 7
// days but not the latest hour [doc]: a brand not pulled for 7 days has
// lost changes for good, to be recovered from the daily files.
func (c *Client) Changes(ctx context.Context, iysCode, brandCode string, q ChangesQuery) (*ChangesPage, error) {
	if err := checkSegments([]string{"iys code", "brand code"}, iysCode, brandCode); err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	if q.Source != ChangesByCitizens && q.Source != ChangesByBrand {
		return nil, fmt.Errorf("changes: source %q: want IYS or HS", q.Source)
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("changes: limit %d is negative", q.Limit)
	}
	v := url.Values{querySource: {string(q.Source)}}
	if q.After != "" {
		v.Set(queryAfter, q.After)
	}
	if q.Limit > 0 {
		v.Set(queryLimit, strconv.Itoa(q.Limit))
	}
	var w struct {
		After flexString        `json:"after"`
		List  []json.RawMessage `json:"list"`
	}
	err := c.do(ctx, call{name: "changes", method: http.MethodGet,
		path: pathChanges(iysCode, brandCode), query: v}, &w)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	return &ChangesPage{After: string(w.After), Entries: w.List}, nil
}

// DecodeChange reads one entry of the changes feed, strictly: the fields a
// record needs (consentDate, source, recipient, recipientType, status,
// type) must be there as strings, and consentDate in İYS's layout. The
// error names the field and never holds a value, since entries carry
// personal data. creationDate and transactionId only inform: either may be
// missing, and a creationDate that cannot be read is left zero.
// Type, status and recipient type are returned as sent, unchecked.
func DecodeChange(raw []byte) (Record, error) {
	var w struct {
		ConsentDate   json.RawMessage `json:"consentDate"`
		CreationDate  lenientDate     `json:"creationDate"`
		Source        json.RawMessage `json:"source"`
		Recipient     json.RawMessage `json:"recipient"`
		RecipientType json.RawMessage `json:"recipientType"`
		Status        json.RawMessage `json:"status"`
		Type          json.RawMessage `json:"type"`
		TransactionID json.RawMessage `json:"transactionId"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return Record{}, errors.New("not a JSON object")
	}
	var (
		r       Record
		date    string
		reasons []string
	)
	required := func(field string, v json.RawMessage, out *string) {
		if err := entryString(v, out); err != nil {
			reasons = append(reasons, field+": "+err.Error())
		} else if *out == "" {
			reasons = append(reasons, field+": missing")
		}
	}
	required("consentDate", w.ConsentDate, &date)
	required("source", w.Source, (*string)(&r.Source))
	required("recipient", w.Recipient, &r.Recipient)
	required("recipientType", w.RecipientType, (*string)(&r.RecipientType))
	required("status", w.Status, (*string)(&r.Status))
	required("type", w.Type, (*string)(&r.Type))
	var tx flexString
	if len(w.TransactionID) > 0 && json.Unmarshal(w.TransactionID, &tx) != nil {
		reasons = append(reasons, "transactionId: want a string or number")
	}
	r.TransactionID = string(tx)
	if date != "" {
		d, err := consent.ParseDate(date)
		if err != nil {
			reasons = append(reasons, "consentDate: not in İYS's layout YYYY-MM-DD HH:MM:SS")
		}
		r.ConsentDate = d
	}
	r.CreationDate = consent.Date(w.CreationDate)
	if len(reasons) > 0 {
		return r, errors.New(strings.Join(reasons, "; "))
	}
	return r, nil
}

// entryString reads a JSON string field of a feed entry; absent and null
// read as "".
func entryString(v json.RawMessage, out *string) error {
	if len(v) == 0 || bytes.Equal(v, jsonNull) {
		*out = ""
		return nil
	}
	if json.Unmarshal(v, out) != nil {
		return errors.New("want a string")
	}
	return nil
}

// ChangeFile opens the CSV of one day's changes (the Türkiye day holding
// day). The caller closes it; read it row by row with NewChangeFileReader. Retries cover
// getting the answer, not reading it: a cut-off read is the caller's error.
// The client's HTTP timeout bounds the whole download, body included.
func (c *Client) ChangeFile(ctx context.Context, iysCode, brandCode string, day time.Time) (io.ReadCloser, error) {
	if err := checkSegments([]string{"iys code", "brand code"}, iysCode, brandCode); err != nil {
		return nil, fmt.Errorf("change file: %w", err)
	}
	rc, err := c.stream(ctx, call{name: "change file", method: http.MethodGet,
		path: pathChangeFile(iysCode, brandCode, day), accept: "text/csv, */*"})
	if err != nil {
		return nil, fmt.Errorf("change file: %w", err)
	}
	return rc, nil
}

// ChangeSummary returns, raw, one day's counts of changes per type and
// source for a recipient type [doc]; the shape is not documented.
func (c *Client) ChangeSummary(ctx context.Context, iysCode, brandCode string, day time.Time, rt consent.RecipientType) (json.RawMessage, error) {
	if err := checkSegments([]string{"iys code", "brand code", "recipient type"}, iysCode, brandCode, string(rt)); err != nil {
		return nil, fmt.Errorf("change summary: %w", err)
	}
	var raw json.RawMessage
	err := c.do(ctx, call{name: "change summary", method: http.MethodGet,
		path: pathChangeSummary(iysCode, brandCode, day, rt)}, &raw)
	if err != nil {
		return nil, fmt.Errorf("change summary: %w", err)
	}
	return raw, nil
}
