package sandbox

import (
	"net/http"
	"regexp"
	"testing"
	"time"
)

var iysDate = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)

func TestAddConsent(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.add(onay(phone(1), start.Add(-time.Hour)))
	r.want(t, http.StatusOK, "")
	var got addResponse
	r.decode(t, &got)
	if got.TransactionID == "" || got.CreationDate != "2025-05-14 10:00:00" {
		t.Fatalf("answer = %+v, want a transaction id and creationDate 2025-05-14 10:00:00 (Türkiye time)", got)
	}
	held := e.held()
	want := recordJSON{IYSCode: iysCode, BrandCode: brandCode, Recipient: phone(1), RecipientType: "BIREYSEL",
		Type: "MESAJ", Status: "ONAY", ConsentDate: "2025-05-14 09:00:00", Source: "HS_WEB",
		CreationDate: "2025-05-14 10:00:00", TransactionID: got.TransactionID}
	if len(held) != 1 || held[0] != want {
		t.Fatalf("held = %+v, want [%+v]", held, want)
	}
}

// TestRules checks each İYS rule's code on a single consent.
func TestRules(t *testing.T) {
	now := start
	cases := []struct {
		name   string
		prior  []wc // recorded first, each must succeed
		c      wc
		status int
		code   string
	}{
		{"before 2015", nil, onay(phone(1), time.Date(2015, 4, 30, 23, 59, 59, 0, now.Location())), 422, "H155"},
		{"in the future", nil, onay(phone(1), now.Add(time.Second)), 422, "H162"},
		{"HS_2015 on another date", nil, onay(phone(1), time.Date(2015, 5, 2, 0, 0, 0, 0, now.Location())).with("source", "HS_2015"), 422, "H156"},
		{"first is RET", nil, onay(phone(1), now).with("status", "RET"), 400, "H175"},
		{"same status twice", []wc{onay(phone(1), now.Add(-time.Hour))}, onay(phone(1), now), 400, "H174"},
		{"older than held", []wc{onay(phone(1), now.Add(-time.Hour))}, onay(phone(1), now.Add(-2*time.Hour)).with("status", "RET"), 400, "H178"},
		{"same date as held", []wc{onay(phone(1), now.Add(-time.Hour))}, onay(phone(1), now.Add(-time.Hour)).with("status", "RET"), 400, "H178"},
		// Given Thursday 8 May: Fri, Mon, Tue are its 3 business days; Wednesday is too late.
		{"3 business days", nil, onay(phone(1), time.Date(2025, 5, 8, 23, 0, 0, 0, now.Location())), 400, "H467"},
		{"unknown type", nil, onay(phone(1), now).with("type", "SMS"), 422, "H111"},
		{"RED for RET", nil, onay(phone(1), now).with("status", "RED"), 422, "H112"},
		{"unknown source", nil, onay(phone(1), now).with("source", "WEB"), 422, "H113"},
		{"citizen source", nil, onay(phone(1), now).with("source", "IYS_WEB"), 422, "H113"},
		{"HS_KARAR with ONAY", nil, onay(phone(1), now).with("source", "HS_KARAR"), 422, "H113"},
		{"unknown recipient type", nil, onay(phone(1), now).with("recipientType", "PERSON"), 422, "H503"},
		{"phone without +", nil, onay("905331234567", now), 422, "H121"},
		{"bad email", nil, onay("not-an-email", now).with("type", "EPOSTA"), 422, "H120"},
		{"no recipient", nil, onay("", now), 422, "H122"},
		{"recipient not text", nil, onay(phone(1), now).with("recipient", 905331234567), 422, "H114"},
		{"date in UTC ISO form", nil, onay(phone(1), now).with("consentDate", "2025-05-14T07:00:00Z"), 422, "H158"},
		{"trailing space", nil, onay(phone(1), now).with("consentDate", "2025-05-14 10:00:00 "), 422, "H158"},
		{"no such day", nil, onay(phone(1), now).with("consentDate", "2025-02-30 10:00:00"), 422, "H157"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			for _, p := range tc.prior {
				e.add(p).want(t, http.StatusOK, "")
			}
			e.add(tc.c).want(t, tc.status, tc.code)
			if n := len(e.held()); n != len(tc.prior) {
				t.Fatalf("%d records after a refusal, want %d", n, len(tc.prior))
			}
		})
	}
}

func TestRulesAccept(t *testing.T) {
	e := newEnv(t, Options{})
	accepted := []wc{
		onay(phone(1), time.Date(2015, 5, 1, 0, 0, 0, 0, start.Location())).with("source", "HS_2015"), // old, but HS_2015 is exempt
		onay(phone(2), time.Date(2025, 5, 9, 0, 0, 0, 0, start.Location())),                           // Friday: Wednesday is its 3rd business day
		onay(phone(3), start),
		onay(phone(3), start).with("status", "RET", "source", "HS_KARAR"), // a RET dated as the ONAY is not newer...
	}
	for _, c := range accepted[:3] {
		e.add(c).want(t, http.StatusOK, "")
	}
	e.add(accepted[3]).want(t, http.StatusBadRequest, "H178") // ...so it is refused
	e.clock.Add(time.Second)
	e.add(onay(phone(3), e.clock.Now()).with("status", "RET", "source", "HS_KARAR")).want(t, http.StatusOK, "")
	// Both recipient types may hold a record for one address.
	e.add(onay(phone(3), e.clock.Now()).with("recipientType", "TACIR")).want(t, http.StatusOK, "")
	if n := len(e.held()); n != 4 {
		t.Fatalf("%d records, want 4", n)
	}
}

func TestConsentStatus(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay("User@Example.com", start).with("type", "EPOSTA", "source", "HS_EPOSTA")).want(t, http.StatusOK, "")

	r := e.call("POST", base+"/consents/status", map[string]string{"recipient": "user@example.com", "recipientType": "BIREYSEL", "type": "EPOSTA"})
	r.want(t, http.StatusOK, "")
	var rec map[string]string
	r.decode(t, &rec)
	if rec["status"] != "ONAY" || rec["recipient"] != "user@example.com" || rec["source"] != "HS_EPOSTA" ||
		!iysDate.MatchString(rec["consentDate"]) || !iysDate.MatchString(rec["creationDate"]) || rec["transactionId"] == "" {
		t.Fatalf("record = %v", rec)
	}
	e.call("POST", base+"/consents/status", map[string]string{"recipient": "user@example.com", "recipientType": "TACIR", "type": "EPOSTA"}).
		want(t, http.StatusNotFound, "H404")
	e.call("POST", base+"/consents/status", map[string]string{"recipient": "user@example.com", "recipientType": "BIREYSEL", "type": "MAIL"}).
		want(t, http.StatusUnprocessableEntity, "H111")
	e.call("POST", "/sps/"+iysCode+"/brands/other/consents/status", map[string]string{"recipient": "user@example.com", "recipientType": "BIREYSEL", "type": "EPOSTA"}).
		want(t, http.StatusNotFound, "H404")
}

func TestConsentStatuses(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start.Add(-time.Hour))).want(t, http.StatusOK, "")
	e.add(onay(phone(2), start.Add(-time.Hour))).want(t, http.StatusOK, "")
	e.add(onay(phone(2), start).with("status", "RET")).want(t, http.StatusOK, "")
	e.add(onay(phone(3), start).with("type", "ARAMA")).want(t, http.StatusOK, "")

	r := e.call("POST", base+"/consents/BIREYSEL/status/MESAJ", map[string][]string{"recipients": {phone(3), phone(2), phone(1), phone(4)}})
	r.want(t, http.StatusOK, "")
	var out struct {
		List []string `json:"list"`
	}
	r.decode(t, &out)
	if len(out.List) != 1 || out.List[0] != phone(1) {
		t.Fatalf("list = %v, want only %s", out.List, phone(1))
	}
	e.call("POST", base+"/consents/KISI/status/MESAJ", map[string][]string{"recipients": {phone(1)}}).want(t, 422, "H503")
	many := make([]string, 1001)
	for i := range many {
		many[i] = phone(i)
	}
	e.call("POST", base+"/consents/BIREYSEL/status/MESAJ", map[string][]string{"recipients": many}).want(t, 400, "H125")
}

func TestUnreadableBody(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.call("POST", base+"/consents", "{not json")
	r.want(t, http.StatusBadRequest, "")
	if errs := r.errs(t); errs[0].Code != "" || errs[0].Message == "" {
		t.Fatalf("errors = %+v, want a message and no invented code", errs)
	}
}

func TestTrailingDataRefused(t *testing.T) {
	e := newEnv(t, Options{})
	e.call("POST", base+"/consents", `{"recipient":"+905330000001"} {"x":1}`).want(t, http.StatusBadRequest, "")
}
