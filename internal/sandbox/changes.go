package sandbox

import (
	"cmp"
	"encoding/csv"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// The changes feed, limits of the sandbox's choosing (İYS publishes none).
const (
	feedDefaultLimit = 1000
	feedMaxLimit     = 1000 // a larger limit is cut to this
	feedRetention    = consent.FeedRetentionDay * 24 * time.Hour
)

// Feed sources: IYS lists what citizens did through İYS (IYS_* sources), HS
// what the brand recorded itself.
const (
	feedIYS = "IYS"
	feedHS  = "HS"
)

type changeJSON struct {
	ConsentDate   string `json:"consentDate"`
	CreationDate  string `json:"creationDate"`
	Source        string `json:"source"`
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Status        string `json:"status"`
	Type          string `json:"type"`
	TransactionID string `json:"transactionId"`
}

func (st *state) change(b *brandState, e *event) changeJSON {
	r := st.recordJSON(b, e)
	return changeJSON{ConsentDate: r.ConsentDate, CreationDate: r.CreationDate, Source: r.Source,
		Recipient: r.Recipient, RecipientType: r.RecipientType, Status: r.Status, Type: r.Type,
		TransactionID: r.TransactionID}
}

type changesResponse struct {
	After string       `json:"after"`
	List  []changeJSON `json:"list"`
}

// changes is GET /consents/changes?source=IYS|HS&after=CURSOR&limit=N: the
// brand's changes of one side, in creation order, of the last 7 days but not
// the latest FeedDelay. `after` resumes behind the last change the previous
// answer covered; each answer returns the cursor to send next, also when
// its list is empty. A cursor is bound to its brand and source.
func (s *Sandbox) changes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	src := q.Get("source")
	if src != feedIYS && src != feedHS {
		writeErrors(w, http.StatusBadRequest, apiError{Code: consent.CodeUnknownSource,
			Message: "source must be IYS or HS", Location: []string{"source"}, Value: src})
		return
	}
	limit := feedDefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeErrors(w, http.StatusBadRequest, apiError{Message: "limit must be a whole number from 1",
				Location: []string{"limit"}, Value: v})
			return
		}
		limit = min(n, feedMaxLimit)
	}
	if s.opts.FeedPageCap > 0 {
		limit = min(limit, s.opts.FeedPageCap)
	}
	bk := pathBrand(r)
	var resp changesResponse
	var cursorErr error
	permitted := true
	s.locked(func(st *state, now time.Time) {
		mask, any := s.access.types(bk, RightAgreementControl)
		if permitted = any; !permitted {
			return
		}
		var next uint64
		if after := q.Get("after"); after != "" {
			if next, cursorErr = st.ids.parseCursor(after, bk, src); cursorErr != nil {
				return
			}
		}
		resp = st.page(bk, src, next, limit, mask, now, s.opts.FeedDelay)
	})
	switch {
	case !permitted:
		s.forbid(w, "no reconciliation (agreementControl) permission")
	case cursorErr != nil:
		writeErrors(w, http.StatusBadRequest, apiError{Message: cursorErr.Error(), Location: []string{"after"}})
	case s.opts.FeedEntry != nil:
		writeJSON(w, http.StatusOK, s.editedPage(bk, src, resp))
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

// editedPage is a page as Options.FeedEntry rewrites its entries.
func (s *Sandbox) editedPage(bk brandKey, src string, resp changesResponse) map[string]any {
	list := make([]map[string]any, len(resp.List))
	for i, c := range resp.List {
		list[i] = map[string]any{"consentDate": c.ConsentDate, "creationDate": c.CreationDate, "source": c.Source,
			"recipient": c.Recipient, "recipientType": c.RecipientType, "status": c.Status, "type": c.Type,
			"transactionId": c.TransactionID}
		s.opts.FeedEntry(bk.brandCode, src, list[i])
	}
	return map[string]any{"after": resp.After, "list": list}
}

// page lists up to limit changes from feed position next on, and the cursor
// behind the last change it looked at.
func (st *state) page(bk brandKey, src string, next uint64, limit int, mask [3]bool, now time.Time, delay time.Duration) changesResponse {
	resp := changesResponse{List: []changeJSON{}}
	b := st.brand(bk, false)
	var events []event
	if b != nil {
		events = b.events
	}
	from := firstAt(events, now.Add(-feedRetention).Unix())
	to := firstAt(events, now.Add(-delay).Unix()+1)
	pos := max(from, int(min(next, uint64(len(events)))))
	for ; pos < to && len(resp.List) < limit; pos++ {
		e := &events[pos]
		if e.hidden || st.sources.names[e.source].IsCitizen() != (src == feedIYS) || !mask[b.recs[e.rec].kind.typeIndex()] {
			continue
		}
		resp.List = append(resp.List, st.change(b, e))
	}
	next = max(next, uint64(pos))
	ms := now.UnixMilli()
	if next > 0 && next <= uint64(len(events)) {
		ms = events[next-1].created * 1000
	}
	resp.After = st.ids.cursor(bk, src, next, ms)
	return resp
}

// firstAt is the first event created at or after sec (events are in
// creation order).
func firstAt(events []event, sec int64) int {
	return sort.Search(len(events), func(i int) bool { return events[i].created >= sec })
}

// reportDay reads a report date, YYYY-MM-DD, as a Türkiye calendar day.
func reportDay(w http.ResponseWriter, r *http.Request) (start, end time.Time, ok bool) {
	v := r.PathValue("reportDate")
	start, err := time.ParseInLocation("2006-01-02", v, consent.Istanbul)
	if err != nil {
		e := codeError(consent.CodeBadDateFormat)
		e.Message, e.Location, e.Value = "reportDate must be YYYY-MM-DD", []string{"reportDate"}, v
		writeErrors(w, http.StatusBadRequest, e)
		return start, end, false
	}
	return start, start.AddDate(0, 0, 1), true
}

// dayEvents runs f on a brand's visible changes of one day, of the types
// with reconciliation rights. ready is false for a day not over yet: İYS
// makes a day's file the day after.
func (s *Sandbox) dayEvents(w http.ResponseWriter, r *http.Request, start, end time.Time, f func(st *state, b *brandState, e *event)) bool {
	bk := pathBrand(r)
	permitted, ready := true, true
	s.locked(func(st *state, now time.Time) {
		mask, any := s.access.types(bk, RightAgreementControl)
		if permitted = any; !permitted {
			return
		}
		if ready = !end.After(now); !ready {
			return
		}
		b := st.brand(bk, false)
		if b == nil {
			return
		}
		for i := firstAt(b.events, start.Unix()); i < len(b.events) && b.events[i].created < end.Unix(); i++ {
			if e := &b.events[i]; !e.hidden && mask[b.recs[e.rec].kind.typeIndex()] {
				f(st, b, e)
			}
		}
	})
	switch {
	case !permitted:
		s.forbid(w, "no reconciliation (agreementControl) permission")
	case !ready:
		e := codeError(consent.CodeNotFound)
		e.Message = "the report of " + start.Format("2006-01-02") + " is made once the day is over"
		writeErrors(w, http.StatusNotFound, e)
	}
	return permitted && ready
}

// fileColumns are the daily file's columns: the changes feed's fields.
var fileColumns = []string{"consentDate", "creationDate", "source", "recipient", "recipientType", "status", "type", "transactionId"}

// changesFile is GET /changes/{reportDate}/file: the CSV of the brand's
// changes created that day (Türkiye time), both sides, in creation order.
func (s *Sandbox) changesFile(w http.ResponseWriter, r *http.Request) {
	start, end, ok := reportDay(w, r)
	if !ok {
		return
	}
	rows := [][]string{fileColumns}
	if !s.dayEvents(w, r, start, end, func(st *state, b *brandState, e *event) {
		c := st.change(b, e)
		rows = append(rows, []string{c.ConsentDate, c.CreationDate, c.Source, c.Recipient, c.RecipientType,
			c.Status, c.Type, c.TransactionID})
	}) {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="changes-`+start.Format("2006-01-02")+`.csv"`)
	_ = csv.NewWriter(w).WriteAll(rows) // the client went away: nothing left to tell
}

type summaryRow struct {
	Type   consent.Type   `json:"type"`
	Source consent.Source `json:"source"`
	Onay   int            `json:"onay"`
	Ret    int            `json:"ret"`
	Total  int            `json:"total"`
}

type summaryJSON struct {
	ReportDate    string       `json:"reportDate"`
	RecipientType string       `json:"recipientType"`
	List          []summaryRow `json:"list"`
}

// changesSummary is GET /changes/{reportDate}/recipients/{BIREYSEL|TACIR}:
// that day's changes of one recipient type, counted per type and source.
func (s *Sandbox) changesSummary(w http.ResponseWriter, r *http.Request) {
	start, end, ok := reportDay(w, r)
	if !ok {
		return
	}
	rt, err := consent.ParseRecipientType(r.PathValue("recipientType"))
	if err != nil {
		writeCode(w, consent.CodeUnknownRecipientType)
		return
	}
	rows := map[[2]string]*summaryRow{}
	if !s.dayEvents(w, r, start, end, func(st *state, b *brandState, e *event) {
		k := b.recs[e.rec].kind
		if k.recipientType() != rt {
			return
		}
		src := st.sources.names[e.source]
		row := rows[[2]string{string(k.typ()), string(src)}]
		if row == nil {
			row = &summaryRow{Type: k.typ(), Source: src}
			rows[[2]string{string(k.typ()), string(src)}] = row
		}
		if e.status == statusRet {
			row.Ret++
		} else {
			row.Onay++
		}
		row.Total++
	}) {
		return
	}
	out := summaryJSON{ReportDate: start.Format("2006-01-02"), RecipientType: string(rt), List: []summaryRow{}}
	for _, row := range rows {
		out.List = append(out.List, *row)
	}
	slices.SortFunc(out.List, func(a, b summaryRow) int {
		return cmp.Or(cmp.Compare(typeIndex(a.Type), typeIndex(b.Type)), cmp.Compare(a.Source, b.Source))
	})
	writeJSON(w, http.StatusOK, out)
}
