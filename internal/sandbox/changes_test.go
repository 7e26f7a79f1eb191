package sandbox

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var cursorShape = regexp.MustCompile(`^\d{13}_[0-9a-f]{64}$`)

func TestChangesPaging(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 5 {
		e.add(onay(phone(i), start)).want(t, http.StatusOK, "")
	}
	var seen []string
	after := ""
	for _, want := range []int{2, 2, 1, 0} {
		q := "source=HS&limit=2"
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		page := e.changes(q)
		if len(page.List) != want {
			t.Fatalf("page of %d, want %d (after %q)", len(page.List), want, after)
		}
		if !cursorShape.MatchString(page.After) {
			t.Fatalf("after = %q, want 1604423100000_<64 hex>", page.After)
		}
		for _, c := range page.List {
			seen = append(seen, c.Recipient)
			if c.Source != "HS_WEB" || c.Status != "ONAY" || c.Type != "MESAJ" || c.RecipientType != "BIREYSEL" ||
				c.TransactionID == "" || c.ConsentDate != "2025-05-14 10:00:00" || c.CreationDate != "2025-05-14 10:00:00" {
				t.Fatalf("change = %+v", c)
			}
		}
		after = page.After
	}
	for i, r := range seen {
		if r != phone(i) {
			t.Fatalf("changes %v, want %s... in creation order", seen, phone(0))
		}
	}
	// The cursor of the last (empty) page sees only what comes after it.
	e.clock.Add(time.Minute)
	e.add(onay(phone(0), e.clock.Now()).with("status", "RET")).want(t, http.StatusOK, "")
	page := e.changes("source=HS&after=" + url.QueryEscape(after))
	if len(page.List) != 1 || page.List[0].Recipient != phone(0) || page.List[0].Status != "RET" {
		t.Fatalf("next page = %+v, want only the new RET", page.List)
	}
	if page = e.changes("source=HS&after=" + url.QueryEscape(page.After)); len(page.List) != 0 {
		t.Fatalf("after the last change: %+v", page.List)
	}
	// Without a cursor, from the start of the window.
	if page = e.changes("source=HS"); len(page.List) != 6 {
		t.Fatalf("whole feed has %d, want 6", len(page.List))
	}
}

func TestChangesCursorRefused(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	good := e.changes("source=HS").After
	ms, hexPart, _ := strings.Cut(good, "_")
	flipped := hexPart[:63] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", hexPart[63])+1)%16])
	for _, cur := range []string{
		"2025-05-14 10:00:00",                       // a date
		"1604423100000_" + strings.Repeat("ab", 32), // shaped like one, never issued
		ms + "_" + flipped,                          // tampered
		"1" + good,                                  // other milliseconds
		"_" + hexPart,                               // no milliseconds
	} {
		e.call("GET", base+"/consents/changes?source=HS&after="+url.QueryEscape(cur), nil).want(t, http.StatusBadRequest, "")
	}
	e.call("GET", base+"/consents/changes?source=IYS&after="+url.QueryEscape(good), nil).want(t, http.StatusBadRequest, "")
	e.call("GET", "/sps/"+iysCode+"/brands/other/consents/changes?source=HS&after="+url.QueryEscape(good), nil).
		want(t, http.StatusBadRequest, "")
	e.call("GET", base+"/consents/changes?source=HS&after="+url.QueryEscape(good), nil).want(t, http.StatusOK, "")
	e.send("POST", "/_sandbox/reset", "", nil).want(t, http.StatusNoContent, "")
	e.call("GET", base+"/consents/changes?source=HS&after="+url.QueryEscape(good), nil).want(t, http.StatusBadRequest, "")
}

func TestChangesQueryChecked(t *testing.T) {
	e := newEnv(t, Options{})
	e.call("GET", base+"/consents/changes", nil).want(t, http.StatusBadRequest, "H113")
	e.call("GET", base+"/consents/changes?source=ALL", nil).want(t, http.StatusBadRequest, "H113")
	e.call("GET", base+"/consents/changes?source=HS&limit=0", nil).want(t, http.StatusBadRequest, "")
	e.call("GET", base+"/consents/changes?source=HS&limit=x", nil).want(t, http.StatusBadRequest, "")
}

func TestCitizenChangeInFeed(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start.Add(-time.Hour))).want(t, http.StatusOK, "")
	e.clock.Add(time.Minute)
	e.citizen(phone(1), "RET", "IYS_MOBIL").want(t, http.StatusOK, "")
	e.citizen(phone(2), "RET", "IYS_3338").want(t, http.StatusOK, "") // no earlier record: a citizen may still opt out
	e.citizen(phone(3), "ONAY", "IYS_NEW_CHANNEL").want(t, http.StatusOK, "")

	iys := e.changes("source=IYS")
	if len(iys.List) != 3 {
		t.Fatalf("IYS side = %+v, want the 3 citizen changes", iys.List)
	}
	c := iys.List[0]
	if c.Recipient != phone(1) || c.Status != "RET" || c.Source != "IYS_MOBIL" || c.ConsentDate != "2025-05-14 10:01:00" {
		t.Fatalf("citizen change = %+v", c)
	}
	hs := e.changes("source=HS")
	if len(hs.List) != 1 || hs.List[0].Source != "HS_WEB" {
		t.Fatalf("HS side = %+v, want only the brand's own ONAY", hs.List)
	}
	// The brand's records follow: an older ONAY is now superseded.
	e.add(onay(phone(1), start.Add(-time.Minute))).want(t, http.StatusBadRequest, "H178")
}

func TestChangesWindow(t *testing.T) {
	e := newEnv(t, Options{FeedDelay: time.Hour})
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	hidden := e.changes("source=HS")
	if len(hidden.List) != 0 {
		t.Fatalf("a change of the latest hour is listed: %+v", hidden.List)
	}
	e.clock.Add(time.Hour)
	if page := e.changes("source=HS&after=" + url.QueryEscape(hidden.After)); len(page.List) != 1 {
		t.Fatalf("after an hour, with the earlier cursor: %+v, want the change", page.List)
	}
	e.later(7*24*time.Hour - time.Hour)
	if page := e.changes("source=HS"); len(page.List) != 1 {
		t.Fatalf("at 7 days: %+v, want the change still", page.List)
	}
	e.clock.Add(time.Second)
	if page := e.changes("source=HS"); len(page.List) != 0 {
		t.Fatalf("past 7 days: %+v, want nothing", page.List)
	}
}

func TestChangesFile(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	e.citizen(phone(1), "RET", "IYS_WEB").want(t, http.StatusOK, "")
	e.add(onay("a@example.com", start).with("type", "EPOSTA", "recipientType", "TACIR")).want(t, http.StatusOK, "")

	e.call("GET", base+"/changes/2025-05-14/file", nil).want(t, http.StatusNotFound, "H404") // the day is not over
	e.call("GET", base+"/changes/14.05.2025/file", nil).want(t, http.StatusBadRequest, "H158")
	e.later(14 * time.Hour) // 2025-05-15 00:00 in Türkiye
	r := e.call("GET", base+"/changes/2025-05-14/file", nil)
	r.want(t, http.StatusOK, "")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type = %q", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	want := [][]string{
		{"consentDate", "creationDate", "source", "recipient", "recipientType", "status", "type", "transactionId"},
		{"2025-05-14 10:00:00", "2025-05-14 10:00:00", "HS_WEB", phone(1), "BIREYSEL", "ONAY", "MESAJ"},
		{"2025-05-14 10:00:00", "2025-05-14 10:00:00", "IYS_WEB", phone(1), "BIREYSEL", "RET", "MESAJ"},
		{"2025-05-14 10:00:00", "2025-05-14 10:00:00", "HS_WEB", "a@example.com", "TACIR", "ONAY", "EPOSTA"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %v", rows)
	}
	for i := range want {
		if strings.Join(rows[i][:7], ",") != strings.Join(want[i][:7], ",") || i > 0 && rows[i][7] == "" {
			t.Fatalf("row %d = %v, want %v", i, rows[i], want[i])
		}
	}
	if r := e.call("GET", base+"/changes/2025-05-13/file", nil); strings.Count(string(r.body), "\n") != 1 {
		t.Fatalf("another day's file = %q, want the header only", r.body)
	}
}

func TestChangesSummary(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	e.add(onay(phone(2), start)).want(t, http.StatusOK, "")
	e.citizen(phone(1), "RET", "IYS_WEB").want(t, http.StatusOK, "")
	e.add(onay(phone(3), start).with("type", "ARAMA")).want(t, http.StatusOK, "")
	e.add(onay(phone(4), start).with("recipientType", "TACIR")).want(t, http.StatusOK, "")
	e.later(24 * time.Hour)

	r := e.call("GET", base+"/changes/2025-05-14/recipients/BIREYSEL", nil)
	r.want(t, http.StatusOK, "")
	var got summaryJSON
	r.decode(t, &got)
	want := []summaryRow{
		{Type: "MESAJ", Source: "HS_WEB", Onay: 2, Total: 2},
		{Type: "MESAJ", Source: "IYS_WEB", Ret: 1, Total: 1},
		{Type: "ARAMA", Source: "HS_WEB", Onay: 1, Total: 1},
	}
	if got.ReportDate != "2025-05-14" || got.RecipientType != "BIREYSEL" || len(got.List) != len(want) {
		t.Fatalf("summary = %+v", got)
	}
	for i := range want {
		if got.List[i] != want[i] {
			t.Fatalf("row %d = %+v, want %+v", i, got.List[i], want[i])
		}
	}
	e.call("GET", base+"/changes/2025-05-14/recipients/KISI", nil).want(t, 422, "H503")
}

// --page-cap: pages shorter than asked, the cursor going on; FeedEntry:
// entries rewritten as served, the feed itself unchanged.
func TestChangesPageCapAndFeedEntry(t *testing.T) {
	if _, err := New(Options{FeedPageCap: -1}); err == nil {
		t.Fatal("a negative page cap accepted")
	}
	e := newEnv(t, Options{FeedPageCap: 2, FeedEntry: func(brand, source string, m map[string]any) {
		if brand == brandCode && source == "HS" && m["recipient"] == phone(1) {
			m["consentDate"] = "14.05.2025 10:00"
			delete(m, "type")
		}
	}})
	for i := range 5 {
		e.add(onay(phone(i), start)).want(t, http.StatusOK, "")
	}
	var sizes []int
	after := ""
	for range 4 {
		r := e.call("GET", base+"/consents/changes?source=HS&limit=1000&after="+url.QueryEscape(after), nil)
		r.want(t, http.StatusOK, "")
		var page struct {
			After string           `json:"after"`
			List  []map[string]any `json:"list"`
		}
		r.decode(t, &page)
		sizes = append(sizes, len(page.List))
		for _, m := range page.List {
			_, typed := m["type"]
			if m["recipient"] == phone(1) && (typed || m["consentDate"] != "14.05.2025 10:00") ||
				m["recipient"] != phone(1) && (!typed || m["consentDate"] != "2025-05-14 10:00:00") {
				t.Errorf("entry %v", m)
			}
		}
		after = page.After
	}
	if fmt.Sprint(sizes) != "[2 2 1 0]" {
		t.Fatalf("pages of %v, want [2 2 1 0] whatever the limit", sizes)
	}
}
