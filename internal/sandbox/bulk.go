package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A bulk request keeps no body: until it is processed, its consents as a
// few compact items; afterwards one byte per item (its code). Subrequest
// ids, transaction ids and the creation date are derived when polled.
type bulkRequest struct {
	id      string
	seq     uint64
	brand   *brandState
	due     time.Time // when its async delay ends: processing time and creationDate
	n       int
	pending []item  // until processed
	codes   []uint8 // once processed, per item: 0 recorded, else an index in state.codes
	txnBase uint64  // transaction numbers of its recorded items follow this one, in item order
}

// item is a well-formed consent waiting in a bulk request.
type item struct {
	recipient string
	date      int64
	kind      kind
	status    status
	source    uint16
}

func (st *state) consentOf(it item) consent.Consent {
	return consent.Consent{
		Recipient:     it.recipient,
		RecipientType: it.kind.recipientType(),
		Type:          it.kind.typ(),
		Status:        it.status.consent(),
		ConsentDate:   consent.NewDate(time.Unix(it.date, 0)),
		Source:        st.sources.names[it.source],
	}
}

// catchUp processes, oldest first, the bulk requests whose delay has ended.
func (st *state) catchUp(now time.Time, sts *stats) {
	for len(st.queue) > 0 && !st.queue[0].due.After(now) {
		req := st.queue[0]
		st.queue[0] = nil
		st.queue = st.queue[1:]
		st.process(req, sts)
	}
}

// process judges a request's items in order, at its due time, each against
// what İYS holds after the items before it.
func (st *state) process(req *bulkRequest, sts *stats) {
	now := consent.NewDate(req.due)
	req.codes = make([]uint8, req.n)
	req.txnBase = st.txnSeq
	for i, it := range req.pending {
		c := st.consentOf(it)
		k := recKey{it.recipient, it.kind}
		code := consent.Evaluate(req.brand.heldFor(k), c, now)
		sts.verdict(code)
		if code != "" {
			req.codes[i] = uint8(st.codes.id(code)) // a few dozen İYS codes: fits a byte
			continue
		}
		st.record(req.brand, k, c, req.due, false)
	}
	req.pending = nil
}

type subRequestJSON struct {
	SubrequestID string `json:"subrequestId"`
	wireConsent
}

type bulkResponse struct {
	RequestID   string           `json:"requestId"`
	SubRequests []subRequestJSON `json:"subRequests"`
}

// submitBulk is POST /consents/request: 1..1000 consents, read and checked
// whole (a malformed item, a repeated key or too many refuse all of them),
// then queued for processing after the async delay.
func (s *Sandbox) submitBulk(w http.ResponseWriter, r *http.Request) {
	var raw []json.RawMessage
	if !readJSON(w, r, maxBulkBody, &raw) {
		return
	}
	switch {
	case len(raw) == 0:
		writeErrors(w, http.StatusBadRequest, apiError{Message: "want 1 to 1000 consents"})
		return
	case len(raw) > consent.MaxBulkSize:
		e := codeError(consent.CodeTooMany)
		e.Value = len(raw)
		writeErrors(w, http.StatusBadRequest, e)
		return
	}
	wires := make([]wireConsent, len(raw))
	items := make([]item, len(raw))
	var used [3]bool
	errs := readItems(raw, wires, items, &used, s.opts.InvalidRecipient)
	if len(errs) > 0 {
		if s.opts.RefusalWithoutIndex {
			for i := range errs {
				errs[i].Index, errs[i].Value = 0, nil
			}
		}
		writeErrors(w, http.StatusBadRequest, errs...)
		return
	}
	bk := pathBrand(r)
	var resp bulkResponse
	denied := consent.Type("")
	s.locked(func(st *state, now time.Time) {
		for i, t := range typeOrder {
			if used[i] && !s.access.allowed(bk, t, RightWrite) {
				denied = t
				return
			}
		}
		st.reqSeq++
		req := &bulkRequest{seq: st.reqSeq, id: st.ids.requestID(st.reqSeq), brand: st.brand(bk, true),
			due: now.Add(s.opts.AsyncDelay), n: len(items), pending: items}
		st.requests[req.id] = req
		st.queue = append(st.queue, req)
		st.catchUp(now, s.stats) // without a delay it is done at once
		resp.RequestID = req.id
		resp.SubRequests = make([]subRequestJSON, len(wires))
		for i := range wires {
			resp.SubRequests[i] = subRequestJSON{SubrequestID: st.ids.subrequestID(req.seq, i), wireConsent: wires[i]}
		}
	})
	if denied != "" {
		s.forbid(w, "no write permission for "+string(denied))
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// readItems decodes and checks each item, filling wires and items, and
// returns the errors of the bad ones, with their index counted from 1.
// Recipients matching invalid are bad too.
func readItems(raw []json.RawMessage, wires []wireConsent, items []item, used *[3]bool, invalid *regexp.Regexp) []apiError {
	var errs []apiError
	first := make(map[recKey]int, len(raw))
	for i, m := range raw {
		e, ok := readItem(m, &wires[i], &items[i], first, i+1, invalid)
		if !ok {
			e.Index = i + 1
			errs = append(errs, e)
			continue
		}
		used[items[i].kind.typeIndex()] = true
	}
	return errs
}

func readItem(m json.RawMessage, wc *wireConsent, it *item, first map[recKey]int, index int, invalid *regexp.Regexp) (apiError, bool) {
	if err := json.Unmarshal(m, wc); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && fieldCode[typeErr.Field] != "" {
			return codeError(fieldCode[typeErr.Field]), false
		}
		return apiError{Message: "not a consent: " + err.Error()}, false
	}
	c, dateCode := wc.parse()
	if code := malformed(c, dateCode); code != "" {
		return codeError(code), false
	}
	if e, bad := heldInvalid(c, wc.Recipient, invalid); bad {
		return e, false
	}
	k := recKey{c.Recipient, kindOf(c.RecipientType, c.Type)}
	if at, dup := first[k]; dup {
		e := codeError(consent.CodeDuplicateInRequest)
		e.Message += fmt.Sprintf(": same recipient, recipientType and type as index %d", at)
		return e, false
	}
	first[k] = index
	*it = item{recipient: k.recipient, date: c.ConsentDate.Time().Unix(), kind: k.kind,
		status: statusOf(c.Status), source: brandSourceID[c.Source]}
	return apiError{}, true
}

// heldInvalid is the error of a recipient İYS holds invalid (see
// Options.InvalidRecipient), with the value as sent.
func heldInvalid(c consent.Consent, sent string, invalid *regexp.Regexp) (apiError, bool) {
	if invalid == nil || !invalid.MatchString(c.Recipient) {
		return apiError{}, false
	}
	code := consent.CodeBadPhone
	if c.Type == consent.TypeEposta {
		code = consent.CodeBadEmail
	}
	e := codeError(code)
	e.Message = "recipient refused: İYS holds it invalid"
	e.Value = sent
	return e, true
}

type itemError struct {
	Code    consent.Code `json:"code"`
	Message string       `json:"message"`
}

type resultJSON struct {
	Index         int        `json:"index"` // counting from 1, as İYS does
	SubrequestID  string     `json:"subrequestId"`
	Status        string     `json:"status"` // enqueue, success or failure
	TransactionID string     `json:"transactionId,omitempty"`
	CreationDate  string     `json:"creationDate,omitempty"`
	Error         *itemError `json:"error,omitempty"`
}

// bulkResult is GET /consents/request/{requestId}: every item's result, in
// an order that is not the submission's (İYS promises none), the same on
// every poll.
func (s *Sandbox) bulkResult(w http.ResponseWriter, r *http.Request) {
	bk, id := pathBrand(r), r.PathValue("requestId")
	var out []resultJSON
	s.locked(func(st *state, _ time.Time) {
		if req, ok := st.requests[id]; ok && req.brand.key == bk {
			out = st.results(req, s.opts.Seed)
		}
	})
	if out == nil {
		e := codeError(consent.CodeNotFound)
		e.Message = "no bulk request " + id + " for this brand"
		writeErrors(w, http.StatusNotFound, e)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (st *state) results(req *bulkRequest, seed int64) []resultJSON {
	out := make([]resultJSON, req.n)
	txn := req.txnBase
	created := formatDate(req.due)
	for i := range out {
		res := resultJSON{Index: i + 1, SubrequestID: st.ids.subrequestID(req.seq, i)}
		switch {
		case req.codes == nil:
			res.Status = "enqueue"
		case req.codes[i] == 0:
			txn++
			res.Status, res.TransactionID, res.CreationDate = "success", st.ids.transactionID(txn), created
		default:
			code := st.codes.names[req.codes[i]]
			res.Status, res.Error = "failure", &itemError{Code: code, Message: messages[code]}
		}
		out[i] = res
	}
	rng := rand.New(rand.NewPCG(uint64(seed), req.seq))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
