package sandbox

import (
	"net/http"
	"testing"
	"time"
)

func TestBulkSubmitAndPoll(t *testing.T) {
	e := newEnv(t, Options{})
	items := []wc{
		onay(phone(1), start).with("retailerCode", 12, "retailerAccess", []int{1, 2}),
		onay(phone(2), start).with("status", "RET"),                                // H175: no earlier record
		onay(phone(3), time.Date(2015, 1, 1, 0, 0, 0, 0, start.Location())),        // H155
		onay(phone(4), start.Add(time.Minute)),                                     // H162
		onay(phone(5), time.Date(2025, 5, 8, 12, 0, 0, 0, start.Location())),       // H467
		onay(phone(6), start).with("source", "HS_2015"),                            // H156
		onay("a@example.com", start.Add(-time.Hour)).with("type", "EPOSTA"),        // success
		onay(phone(1), start).with("type", "ARAMA"),                                // success: another type
		onay(phone(1), start).with("type", "ARAMA", "recipientType", "TACIR"),      // success: another recipient type
		onay(phone(9), start.Add(-2*time.Hour)).with("source", "HS_CAGRI_MERKEZI"), // success
	}
	sub := e.submit(items)
	if sub.RequestID == "" || len(sub.SubRequests) != len(items) {
		t.Fatalf("answer = %+v", sub)
	}
	for i, s := range sub.SubRequests {
		if s.SubrequestID == "" || s.Recipient != items[i]["recipient"] || s.Status != items[i]["status"] {
			t.Fatalf("subRequest %d = %+v, want the echo of %v", i, s, items[i])
		}
	}
	if rc := sub.SubRequests[0]; rc.RetailerCode == nil || *rc.RetailerCode != 12 || len(rc.RetailerAccess) != 2 ||
		rc.ConsentDate != "2025-05-14 10:00:00" {
		t.Fatalf("subRequest 1 = %+v, want retailer fields and date echoed", rc)
	}
	want := []string{"", "H175", "H155", "H162", "H467", "H156", "", "", "", ""}
	got := byIndex(t, e.poll(sub.RequestID))
	txns := map[string]bool{}
	for i, r := range got {
		if r.SubrequestID != sub.SubRequests[i].SubrequestID {
			t.Fatalf("index %d has subrequestId %s, submitted as %s", r.Index, r.SubrequestID, sub.SubRequests[i].SubrequestID)
		}
		switch {
		case want[i] == "" && (r.Status != "success" || r.TransactionID == "" || r.CreationDate != "2025-05-14 10:00:00" || r.Error != nil):
			t.Errorf("item %d = %+v, want success", i+1, r)
		case want[i] != "" && (r.Status != "failure" || r.Error == nil || r.Error.Code != want[i] || r.TransactionID != ""):
			t.Errorf("item %d = %+v, want failure %s", i+1, r, want[i])
		}
		if r.TransactionID != "" {
			if txns[r.TransactionID] {
				t.Errorf("transaction id %s twice", r.TransactionID)
			}
			txns[r.TransactionID] = true
		}
	}
	if n := len(e.held()); n != 5 {
		t.Fatalf("%d records, want 5", n)
	}
}

func TestBulkRulesSeeEarlierItemsAndRequests(t *testing.T) {
	e := newEnv(t, Options{})
	first := e.submit([]wc{onay(phone(1), start.Add(-time.Hour))})
	second := e.submit([]wc{
		onay(phone(1), start.Add(-30*time.Minute)),                    // H174: the first request holds ONAY
		onay(phone(1), start.Add(-2*time.Hour)).with("type", "ARAMA"), // success
	})
	third := e.submit([]wc{onay(phone(1), start.Add(-3*time.Hour)).with("status", "RET")}) // H178
	if r := e.poll(first.RequestID); r[0].Status != "success" {
		t.Fatalf("first = %+v", r)
	}
	r := byIndex(t, e.poll(second.RequestID))
	if r[0].Error == nil || r[0].Error.Code != "H174" || r[1].Status != "success" {
		t.Fatalf("second = %+v", r)
	}
	if r := e.poll(third.RequestID); r[0].Error == nil || r[0].Error.Code != "H178" {
		t.Fatalf("third = %+v", r)
	}
}

func TestBulkTooMany(t *testing.T) {
	e := newEnv(t, Options{})
	items := make([]wc, 1001)
	for i := range items {
		items[i] = onay(phone(i), start)
	}
	e.call("POST", base+"/consents/request", items).want(t, http.StatusBadRequest, "H125")
	e.call("POST", base+"/consents/request", items[:1000]).want(t, http.StatusOK, "")
	e.call("POST", base+"/consents/request", []wc{}).want(t, http.StatusBadRequest, "")
	e.call("POST", base+"/consents/request", onay(phone(1), start)).want(t, http.StatusBadRequest, "") // not an array
	if n := len(e.held()); n != 1000 {
		t.Fatalf("%d records, want the 1000 of the accepted request only", n)
	}
}

func TestBulkDuplicate(t *testing.T) {
	e := newEnv(t, Options{})
	items := []wc{
		onay(phone(1), start),
		onay(phone(1), start).with("type", "ARAMA"),
		onay(phone(1), start.Add(-time.Minute)).with("status", "RET"), // the same key as item 1
		onay("X@example.com", start).with("type", "EPOSTA"),
		onay("x@example.com ", start).with("type", "EPOSTA"), // the same address, once normalised
	}
	r := e.call("POST", base+"/consents/request", items)
	r.want(t, http.StatusBadRequest, "H194")
	errs := r.errs(t)
	if len(errs) != 2 || errs[0].Index != 3 || errs[1].Index != 5 || errs[1].Code != "H194" {
		t.Fatalf("errors = %+v, want H194 at indexes 3 and 5", errs)
	}
	if n := len(e.held()); n != 0 {
		t.Fatalf("a refused request recorded %d consents", n)
	}
}

func TestBulkMalformed(t *testing.T) {
	e := newEnv(t, Options{})
	items := []any{
		onay(phone(1), start),
		onay(phone(2), start).with("status", "RED"),
		onay(phone(3), start),
		onay(phone(4), start).with("consentDate", "14.05.2025 10:00:00"),
		"not a consent",
		onay(phone(6), start).with("recipient", "+90 533 000 0006"),
	}
	r := e.call("POST", base+"/consents/request", items)
	r.want(t, http.StatusBadRequest, "H112")
	errs := r.errs(t)
	want := []struct {
		index int
		code  string
	}{{2, "H112"}, {4, "H158"}, {5, ""}, {6, "H121"}}
	if len(errs) != len(want) {
		t.Fatalf("errors = %+v, want %v", errs, want)
	}
	for i, w := range want {
		if errs[i].Index != w.index || errs[i].Code != w.code || errs[i].Message == "" {
			t.Errorf("error %d = %+v, want index %d code %q", i, errs[i], w.index, w.code)
		}
	}
	if len(errs[0].Location) != 1 || errs[0].Location[0] != "status" {
		t.Errorf("location = %v, want [status]", errs[0].Location)
	}
	if n := len(e.held()); n != 0 {
		t.Fatalf("a refused request recorded %d consents", n)
	}
}

func TestBulkResultOrder(t *testing.T) {
	e := newEnv(t, Options{})
	items := make([]wc, 200)
	for i := range items {
		items[i] = onay(phone(i), start)
	}
	sub := e.submit(items)
	got := e.poll(sub.RequestID)
	inOrder := true
	for i, r := range got {
		inOrder = inOrder && r.Index == i+1
	}
	if inOrder {
		t.Fatal("results come in submission order; İYS promises no order and clients must match by subrequestId")
	}
	again := e.poll(sub.RequestID)
	for i := range got {
		if got[i].Index != again[i].Index {
			t.Fatal("two polls gave different orders; the order is derived from the seed")
		}
	}
	ids := map[string]bool{}
	for i, r := range byIndex(t, got) {
		if r.SubrequestID != sub.SubRequests[i].SubrequestID || r.Status != "success" {
			t.Fatalf("index %d = %+v, submitted %+v", r.Index, r, sub.SubRequests[i])
		}
		if ids[r.SubrequestID] {
			t.Fatalf("subrequestId %s twice", r.SubrequestID)
		}
		ids[r.SubrequestID] = true
	}
}

func TestBulkAsyncDelay(t *testing.T) {
	e := newEnv(t, Options{AsyncDelay: 30 * time.Second})
	sub := e.submit([]wc{onay(phone(1), start), onay(phone(2), start).with("status", "RET")})
	for _, r := range e.poll(sub.RequestID) {
		if r.Status != "enqueue" || r.TransactionID != "" || r.CreationDate != "" || r.Error != nil {
			t.Fatalf("before the delay: %+v, want enqueue only", r)
		}
	}
	if n := len(e.held()); n != 0 {
		t.Fatalf("%d records before the delay", n)
	}
	e.clock.Add(29 * time.Second)
	if r := e.poll(sub.RequestID); r[0].Status != "enqueue" {
		t.Fatalf("at 29 s: %+v", r)
	}
	e.clock.Add(time.Minute) // processed lazily, but as of its due time
	r := byIndex(t, e.poll(sub.RequestID))
	if r[0].Status != "success" || r[0].CreationDate != "2025-05-14 10:00:30" || r[1].Error == nil || r[1].Error.Code != "H175" {
		t.Fatalf("after the delay: %+v", r)
	}
}

// A single consent recorded while a bulk request waits is judged first;
// the bulk item is judged when processed, against it.
func TestBulkJudgedAtProcessingTime(t *testing.T) {
	e := newEnv(t, Options{AsyncDelay: time.Minute})
	sub := e.submit([]wc{onay(phone(1), start.Add(-time.Hour))})
	e.clock.Add(10 * time.Second)
	e.add(onay(phone(1), start.Add(-30*time.Minute))).want(t, http.StatusOK, "")
	e.clock.Add(time.Minute)
	if r := e.poll(sub.RequestID); r[0].Error == nil || r[0].Error.Code != "H174" {
		t.Fatalf("bulk item = %+v, want H174 against the single consent", r[0])
	}
	// An item dated just before submission is fine though processed later...
	sub = e.submit([]wc{onay(phone(2), e.clock.Now())})
	e.clock.Add(time.Minute)
	if r := e.poll(sub.RequestID); r[0].Status != "success" {
		t.Fatalf("item = %+v", r[0])
	}
}

func TestBulkUnknownRequest(t *testing.T) {
	e := newEnv(t, Options{})
	sub := e.submit([]wc{onay(phone(1), start)})
	e.call("GET", base+"/consents/request/00000000-0000-0000-0000-000000000000", nil).want(t, http.StatusNotFound, "H404")
	e.call("GET", "/sps/"+iysCode+"/brands/other/consents/request/"+sub.RequestID, nil).want(t, http.StatusNotFound, "H404")
}
