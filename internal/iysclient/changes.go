package iysclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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
type ChangesPage struct {
	After string
	List  []Record
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
		After flexString `json:"after"`
		List  []Record   `json:"list"`
	}
	err := c.do(ctx, call{name: "changes", method: http.MethodGet,
		path: pathChanges(iysCode, brandCode), query: v}, &w)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	return &ChangesPage{After: string(w.After), List: w.List}, nil
}

// ChangeFile opens the CSV of one day's changes (the Türkiye day holding
// day). The caller closes it; read it with ParseChangeFile. Retries cover
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
