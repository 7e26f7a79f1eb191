package iysclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func testConsents(t *testing.T, n int) []consent.Consent {
	t.Helper()
	d, err := consent.ParseDate("2025-05-15 14:23:00")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]consent.Consent, n)
	for i := range out {
		out[i] = consent.Consent{Recipient: fmt.Sprintf("+9053312345%02d", i), RecipientType: consent.Bireysel,
			Type: consent.TypeMesaj, Status: consent.StatusOnay, ConsentDate: d, Source: consent.SourceWeb}
	}
	return out
}

// bulkIYS accepts bulk requests, echoes them shuffled, and answers the
// results shuffled with a 1-based index; the verdict of each consent is
// chosen from its recipient, so the test knows which result is whose.
type bulkIYS struct {
	mu      sync.Mutex
	sent    map[string][]map[string]any // requestId → consents as received
	subs    map[string][]string         // requestId → subrequestId per sent position
	rnd     *rand.Rand
	polls   atomic.Int32
	enqueue int32 // polls answered "enqueue" before the results
}

func newBulkIYS() *bulkIYS {
	return &bulkIYS{sent: map[string][]map[string]any{}, subs: map[string][]string{}, rnd: rand.New(rand.NewPCG(1, 2))}
}

func verdictFor(recipient string) (string, consent.Code) {
	switch recipient[len(recipient)-1] {
	case '1':
		return "failure", consent.CodeSameStatus
	case '2':
		return "failure", consent.CodeNewerHeld
	}
	return "success", ""
}

func (b *bulkIYS) handle(w http.ResponseWriter, r *http.Request) {
	const prefix = "/sps/600/brands/700/consents/request"
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == prefix:
		var items []map[string]any // a top-level array, or this fails
		if err := json.NewDecoder(r.Body).Decode(&items); err != nil {
			writeError(w, http.StatusBadRequest, "", "want a JSON array")
			return
		}
		id := fmt.Sprintf("req-%d", len(b.sent)+1)
		b.sent[id] = items
		subs := make([]map[string]any, len(items))
		for i, it := range items {
			sub := fmt.Sprintf("sub-%d-%d", len(b.sent), b.rnd.IntN(1<<30))
			b.subs[id] = append(b.subs[id], sub)
			echo := map[string]any{"subrequestId": sub}
			for k, v := range it {
				echo[k] = v
			}
			// İYS may normalise the echo: no "+" on the phone.
			echo["recipient"] = strings.TrimPrefix(it["recipient"].(string), "+")
			subs[i] = echo
		}
		b.rnd.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
		writeJSON(w, http.StatusOK, map[string]any{"requestId": id, "subRequests": subs})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, prefix+"/"):
		id := strings.TrimPrefix(r.URL.Path, prefix+"/")
		items, ok := b.sent[id]
		if !ok {
			writeError(w, http.StatusNotFound, "", "no such request")
			return
		}
		poll := b.polls.Add(1)
		res := make([]map[string]any, len(items))
		for i, it := range items {
			rec := it["recipient"].(string)
			m := map[string]any{"index": i + 1, "subrequestId": b.subs[id][i], "status": "enqueue"}
			if poll > b.enqueue {
				status, code := verdictFor(rec)
				m["status"] = status
				if code == "" {
					m["transactionId"] = "tx-" + rec
					m["creationDate"] = "2025-05-15 14:25:00"
				} else {
					m["error"] = map[string]any{"code": code, "message": "refused"}
				}
			}
			res[i] = m
		}
		b.rnd.Shuffle(len(res), func(i, j int) { res[i], res[j] = res[j], res[i] })
		writeJSON(w, http.StatusOK, res)
	default:
		http.NotFound(w, r)
	}
}

func TestBulkMatchedBySubrequestID(t *testing.T) {
	b := newBulkIYS()
	f := newFakeIYS(t, b.handle)
	c := newTestClient(t, f)
	ctx := context.Background()
	items := testConsents(t, 30)

	req, err := c.SubmitBulk(ctx, "600", "700", items)
	if err != nil {
		t.Fatalf("SubmitBulk: %v", err)
	}
	if req.RequestID != "req-1" || len(req.Items) != len(items) {
		t.Fatalf("request = %s with %d items", req.RequestID, len(req.Items))
	}
	for i, it := range req.Items {
		if it.Consent != items[i] || it.SubrequestID != b.subs["req-1"][i] {
			t.Fatalf("item %d: got %s for %s, want %s", i, it.SubrequestID, it.Consent.Recipient, b.subs["req-1"][i])
		}
	}

	results, err := c.BulkResults(ctx, "600", "700", req.RequestID)
	if err != nil {
		t.Fatalf("BulkResults: %v", err)
	}
	matched, err := MatchResults(req.Items, results)
	if err != nil {
		t.Fatalf("MatchResults: %v", err)
	}
	for i, m := range matched {
		rec := items[i].Recipient
		if m.Consent.Recipient != rec {
			t.Fatalf("result %d is for %s, want %s", i, m.Consent.Recipient, rec)
		}
		if m.Result.Index != i+1 {
			t.Errorf("%s: index %d, want %d (1-based)", rec, m.Result.Index, i+1)
		}
		status, code := verdictFor(rec)
		switch {
		case status == "success" && (m.Result.Class() != consent.ClassAccepted || m.Result.TransactionID != "tx-"+rec):
			t.Errorf("%s: got %+v, want success tx-%s", rec, m.Result, rec)
		case status == "failure" && (m.Result.Error == nil || m.Result.Error.Code != code || m.Result.Class() != consent.Classify(code)):
			t.Errorf("%s: got %+v, want failure %s", rec, m.Result, code)
		}
	}
	if got := matched[0].Result.CreationDate.String(); got != "2025-05-15 14:25:00" {
		t.Errorf("creation date = %q", got)
	}
}

func TestSubmitBulkWireFormat(t *testing.T) {
	var body []byte
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		var raw json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&raw)
		body = raw
		writeJSON(w, http.StatusOK, map[string]any{"requestId": 42, "subRequests": []map[string]any{
			{"subrequestId": 7, "recipient": "+905331234500", "recipientType": "BIREYSEL", "type": "MESAJ"}}})
	})
	c := newTestClient(t, f)
	req, err := c.SubmitBulk(context.Background(), "600", "700", testConsents(t, 1))
	if err != nil {
		t.Fatalf("SubmitBulk: %v", err)
	}
	want := `[{"recipient":"+905331234500","recipientType":"BIREYSEL","type":"MESAJ","status":"ONAY","consentDate":"2025-05-15 14:23:00","source":"HS_WEB"}]`
	if string(body) != want {
		t.Errorf("body = %s\nwant   %s", body, want)
	}
	if req.RequestID != "42" || req.Items[0].SubrequestID != "7" {
		t.Errorf("numeric ids read as %q, %q", req.RequestID, req.Items[0].SubrequestID)
	}
}

func TestSubmitBulkRefusedLocally(t *testing.T) {
	f := newFakeIYS(t, okBrands)
	c := newTestClient(t, f)
	dup := testConsents(t, 3)
	dup[2].Recipient = strings.TrimPrefix(dup[0].Recipient, "+") // the same recipient, written otherwise
	tests := []struct {
		name  string
		items []consent.Consent
		want  error
	}{
		{"empty", nil, ErrBulkSize},
		{"too many", testConsents(t, consent.MaxBulkSize+1), ErrBulkSize},
		{"key twice", dup, ErrDuplicateKey},
	}
	for _, tt := range tests {
		_, err := c.SubmitBulk(context.Background(), "600", "700", tt.items)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if ErrorClass(err) != consent.ClassOurBug {
			t.Errorf("%s: class = %q", tt.name, ErrorClass(err))
		}
		if strings.Contains(fmt.Sprint(err), "905331234500") {
			t.Errorf("%s: error shows a whole recipient: %v", tt.name, err)
		}
	}
	if f.apiCalls.Load()+f.logins.Load() != 0 {
		t.Error("a refused bulk request was sent")
	}
	if _, err := c.SubmitBulk(context.Background(), "600", "700", testConsents(t, consent.MaxBulkSize)); errors.Is(err, ErrBulkSize) {
		t.Error("1000 consents refused")
	}
}

func TestSubmitBulkEchoMismatchFailsLoudly(t *testing.T) {
	tests := []struct {
		name string
		subs []map[string]any
	}{
		{"unknown recipient", []map[string]any{
			{"subrequestId": "a", "recipient": "+905331234500", "recipientType": "BIREYSEL", "type": "MESAJ"},
			{"subrequestId": "b", "recipient": "+905559999999", "recipientType": "BIREYSEL", "type": "MESAJ"}}},
		{"one consent twice", []map[string]any{
			{"subrequestId": "a", "recipient": "+905331234500", "recipientType": "BIREYSEL", "type": "MESAJ"},
			{"subrequestId": "b", "recipient": "+905331234500", "recipientType": "BIREYSEL", "type": "MESAJ"}}},
		{"count differs", []map[string]any{
			{"subrequestId": "a", "recipient": "+905331234500", "recipientType": "BIREYSEL", "type": "MESAJ"}}},
		{"subrequestId twice", []map[string]any{
			{"subrequestId": "a", "recipient": "+905331234500", "recipientType": "BIREYSEL", "type": "MESAJ"},
			{"subrequestId": "a", "recipient": "+905331234501", "recipientType": "BIREYSEL", "type": "MESAJ"}}},
		{"no echo", []map[string]any{{"subrequestId": "a"}, {"subrequestId": "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, http.StatusOK, map[string]any{"requestId": "req-9", "subRequests": tt.subs})
			})
			c := newTestClient(t, f)
			_, err := c.SubmitBulk(context.Background(), "600", "700", testConsents(t, 2))
			var me *BulkMatchError
			if !errors.As(err, &me) || me.RequestID != "req-9" {
				t.Fatalf("err = %v, want *BulkMatchError keeping the request id", err)
			}
			if strings.Contains(err.Error(), "5559999999") {
				t.Errorf("error shows a whole recipient: %v", err)
			}
		})
	}
}

func TestSubmitBulkRetriedOn503(t *testing.T) {
	b := newBulkIYS()
	var n atomic.Int32
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeError(w, http.StatusServiceUnavailable, "", "busy")
			return
		}
		b.handle(w, r)
	})
	c := newTestClient(t, f)
	if _, err := c.SubmitBulk(context.Background(), "600", "700", testConsents(t, 3)); err != nil {
		t.Fatalf("SubmitBulk: %v", err)
	}
	if got := f.apiCalls.Load(); got != 2 {
		t.Errorf("API requests = %d, want 2", got)
	}
}

func TestBulkRefusedWholeListsItems(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{
			{"code": "H114", "message": "recipient", "location": []string{"recipient"}, "index": 3, "value": "x"},
			{"code": "H158", "message": "date format", "location": "consentDate", "index": "5"},
		}})
	})
	c := newTestClient(t, f)
	_, err := c.SubmitBulk(context.Background(), "600", "700", testConsents(t, 6))
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if f.apiCalls.Load() != 1 {
		t.Errorf("a refused request was retried")
	}
	if len(apiErr.Errors) != 2 || *apiErr.Errors[0].Index != 3 || *apiErr.Errors[1].Index != 5 ||
		apiErr.Errors[1].Code != consent.CodeBadDateFormat || apiErr.Errors[1].Location[0] != "consentDate" {
		t.Errorf("item errors = %+v", apiErr.Errors)
	}
	if apiErr.Code != consent.CodeUnknownRecipient || *apiErr.Index != 3 || apiErr.Class() != consent.ClassInvalid {
		t.Errorf("top error = %s %v %s", apiErr.Code, apiErr.Index, apiErr.Class())
	}
}

func TestMatchResultsRefusesDoubt(t *testing.T) {
	items := []BulkItem{{SubrequestID: "a"}, {SubrequestID: "b"}}
	tests := []struct {
		name    string
		items   []BulkItem
		results []BulkResult
	}{
		{"unknown id", items, []BulkResult{{SubrequestID: "a"}, {SubrequestID: "c"}}},
		{"id twice", items, []BulkResult{{SubrequestID: "a"}, {SubrequestID: "a"}}},
		{"missing", items, []BulkResult{{SubrequestID: "b"}}},
		{"item without id", []BulkItem{{}}, []BulkResult{{}}},
	}
	for _, tt := range tests {
		if _, err := MatchResults(tt.items, tt.results); err == nil {
			t.Errorf("%s: matched", tt.name)
		}
	}
	got, err := MatchResults(items, []BulkResult{{SubrequestID: "b", Index: 1}, {SubrequestID: "a", Index: 2}})
	if err != nil || got[0].Result.Index != 2 || got[1].Result.Index != 1 {
		t.Errorf("order-independent match failed: %+v, %v", got, err)
	}
}

func TestWaitBulkPollsUntilDone(t *testing.T) {
	b := newBulkIYS()
	b.enqueue = 2
	f := newFakeIYS(t, b.handle)
	c := newTestClient(t, f)
	ctx := context.Background()
	req, err := c.SubmitBulk(ctx, "600", "700", testConsents(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.WaitBulk(ctx, "600", "700", req.RequestID, time.Millisecond)
	if err != nil {
		t.Fatalf("WaitBulk: %v", err)
	}
	if !BulkDone(res) || b.polls.Load() != 3 {
		t.Errorf("done = %v after %d polls, want done after 3", BulkDone(res), b.polls.Load())
	}
	if BulkDone(nil) || BulkDone([]BulkResult{{Status: "processing"}}) {
		t.Error("an empty list or an unknown status counts as done")
	}
}

func TestBulkResultsAcceptsListWrapper(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"list": []map[string]any{
			{"index": "1", "subrequestId": "s", "status": "SUCCESS", "creationDate": "2025-05-15T14:25:00.123+03:00"}}})
	})
	c := newTestClient(t, f)
	res, err := c.BulkResults(context.Background(), "600", "700", "r")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Status != ResultSuccess || res[0].Index != 1 ||
		res[0].CreationDate.String() != "2025-05-15 14:25:00" {
		t.Errorf("results = %+v", res)
	}
}
