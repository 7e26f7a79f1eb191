package intake

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
)

// The changes feed: GET /v1/connectors/{brandCode}/changes lists, in order
// and resumably, the changes İYS brought us (citizens' opt-outs and
// opt-ins, pulled) and the consents İYS refused for good, so that the
// brand's senders learn them. A change takes its place in the feed once
// committed, after every change already read (store.ChangesAfter).

// Page sizes of the feed.
const (
	DefaultChangesLimit = 100
	MaxChangesLimit     = 1000
)

// Change is one entry of the feed: the record as the change left it.
// Outcome is from_iys for a change İYS brought, else İYS's refusal
// (no_prior_record, superseded, too_old, invalid, unknown) with its code
// and message.
type Change struct {
	ID            int64  `json:"id"`
	Kind          string `json:"kind"`
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
	Outcome       string `json:"outcome"`
	IYSCode       string `json:"iysCode"`
	IYSMessage    string `json:"iysMessage"`
	At            string `json:"at"`
}

// ChangeOf is the feed's entry of a stored change; the webhooks send the same.
func ChangeOf(c store.FeedChange) Change {
	return Change{ID: c.ID, Kind: c.Kind, Recipient: c.Recipient, RecipientType: string(c.RecipientType),
		Type: string(c.Type), Status: string(c.Status), ConsentDate: rfc3339(c.ConsentDate.Time()),
		Source: string(c.Source), Outcome: string(c.Outcome), IYSCode: c.IYSCode, IYSMessage: c.IYSMessage,
		At: rfc3339(c.At)}
}

// ChangesResponse is a page of the feed. Next is the cursor to ask after
// for the following page: the given one when the page is empty.
type ChangesResponse struct {
	BrandCode string   `json:"brandCode"`
	Changes   []Change `json:"changes"`
	Next      string   `json:"next"`
}

// encodeCursor makes a place in the feed an opaque cursor.
func encodeCursor(pos int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("p" + strconv.FormatInt(pos, 10)))
}

// errBadCursor is a cursor this feed did not give.
var errBadCursor = errors.New("is not a cursor of this feed: give the next of a page, or nothing to start from the beginning")

// decodeCursor reads a cursor of encodeCursor; "" is the start (0).
func decodeCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'p' {
		return 0, errBadCursor
	}
	pos, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || pos < 1 {
		return 0, errBadCursor
	}
	return pos, nil
}

// changes is GET /v1/connectors/{brandCode}/changes.
func (h *Handler) changes(w http.ResponseWriter, r *http.Request) {
	x := h.exchange(w, r, "changes feed request")
	conn, _, ok := h.admit(x, http.MethodGet)
	if !ok {
		return
	}
	params := r.URL.Query()
	for name, vs := range params {
		if name != "after" && name != "limit" {
			if len(name) > 40 {
				name = name[:40] + "..."
			}
			x.failField(http.StatusBadRequest, "bad_request", name, name+": is not a parameter: want after and limit")
			return
		}
		if len(vs) > 1 {
			x.failField(http.StatusBadRequest, "bad_request", name, name+": is given more than once")
			return
		}
	}
	after := params.Get("after")
	pos, err := decodeCursor(after)
	if err != nil {
		x.failField(http.StatusBadRequest, "bad_request", "after", "after: "+err.Error())
		return
	}
	limit := DefaultChangesLimit
	if s := params.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxChangesLimit {
			x.failField(http.StatusBadRequest, "bad_request", "limit",
				fmt.Sprintf("limit: must be a whole number from 1 to %d", MaxChangesLimit))
			return
		}
	}
	got, err := h.st.ChangesAfter(r.Context(), conn.ID, pos, limit)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		x.dbFailed(err, "nothing was read", "the changes could not be read")
		return
	}
	resp := ChangesResponse{BrandCode: conn.BrandCode, Changes: make([]Change, len(got)), Next: after}
	for i, c := range got {
		resp.Changes[i] = ChangeOf(c)
		resp.Next = encodeCursor(c.Pos)
	}
	x.log.Debug("changes feed page", zap.Int("changes", len(got)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		x.log.Debug("changes feed: write response", zap.Error(err))
	}
}

// rfc3339 writes a time as the API does: RFC 3339 in Türkiye time.
func rfc3339(t time.Time) string { return t.In(consent.Istanbul).Format(time.RFC3339) }
