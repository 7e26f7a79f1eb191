package intake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// bulkItem is the i-th consent of the 100,000: every fourth an email, the
// others SMS as MESAJ or ARAMA, named by type or by channel; dates in both
// formats; distinct records.
func bulkItem(i int) map[string]string {
	when := time.Date(2025, 5, 15, 8, 0, 0, 0, consent.Istanbul).Add(time.Duration(i) * time.Second)
	it := map[string]string{
		"status":     []string{"ONAY", "RET"}[i%2],
		"platform":   []string{"web", "mobileapp", "SMS", "form", "kiosk"}[i%5],
		"externalId": fmt.Sprintf("ext-%d", i),
	}
	if i%3 == 0 {
		it["consentDate"] = when.UTC().Format(time.RFC3339)
	} else {
		it["consentDate"] = when.Format("2006-01-02 15:04:05")
	}
	switch i % 4 {
	case 0:
		it["recipient"], it["channel"] = fmt.Sprintf("user%d%sexample.com", i, at), "email"
	case 1:
		it["recipient"], it["channel"] = fmt.Sprintf("90533%07d", i), "sms"
	case 2:
		it["recipient"], it["type"] = fmt.Sprintf("90533%07d", i), "ARAMA"
	case 3:
		it["recipient"], it["type"] = fmt.Sprintf("90533%07d", i), "MESAJ"
	}
	return it
}

// TestBulkPostsArePendingOnceAndIdempotent posts 100,000 consents in batches
// of 5,000: each is stored once, pending, with its values; posting them all
// again changes nothing.
func TestBulkPostsArePendingOnceAndIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const total, batch = 100000, 5000
	post := func(want string) {
		for from := 0; from < total; from += batch {
			items := make([]map[string]string, batch)
			for i := range items {
				items[i] = bulkItem(from + i)
			}
			r := e.send(t, "B", items)
			for _, it := range r.Items {
				if it.Verdict != want {
					t.Fatalf("item %d of batch %d: %+v, want %s", it.Index, from/batch, it, want)
				}
			}
		}
	}
	post(VerdictAccepted)
	if n := e.count(t, "SELECT count(*) FROM consents WHERE connector_id = $1 AND state = 'pending' AND version = 1", e.b.ID); n != total {
		t.Fatalf("%d pending records at version 1, want %d", n, total)
	}
	if n := e.count(t, "SELECT count(*) FROM consents"); n != total {
		t.Fatalf("%d records, want %d", n, total)
	}
	checkSample := func() {
		t.Helper()
		for i := 7; i < total; i += 997 {
			it := bulkItem(i)
			typ := map[int]string{0: "EPOSTA", 1: "MESAJ", 2: "ARAMA", 3: "MESAJ"}[i%4]
			rcpt := it["recipient"]
			if typ != "EPOSTA" {
				rcpt = "+" + rcpt
			}
			var status, source, ext, rt, state string
			var when time.Time
			var version int
			err := e.db.QueryRow(`SELECT status, source, external_id, recipient_type, state, consent_date, version
				FROM consents WHERE connector_id = $1 AND recipient = $2 AND type = $3`, e.b.ID, rcpt, typ).
				Scan(&status, &source, &ext, &rt, &state, &when, &version)
			if err != nil {
				t.Fatalf("item %d (%s): %v", i, typ, err)
			}
			src, _, _ := consent.PlatformSource(it["platform"], consent.SourceWeb)
			wantWhen := time.Date(2025, 5, 15, 8, 0, 0, 0, consent.Istanbul).Add(time.Duration(i) * time.Second)
			if status != it["status"] || source != string(src) || ext != it["externalId"] || rt != "BIREYSEL" ||
				state != "pending" || !when.Equal(wantWhen) || version != 1 {
				t.Fatalf("item %d stored as %s %s %s %s %s %v v%d", i, status, source, ext, rt, state, when, version)
			}
		}
	}
	checkSample()

	start := time.Now()
	post(VerdictUnchanged)
	t.Logf("second pass of %d unchanged consents: %v", total, time.Since(start))
	if n := e.count(t, "SELECT count(*) FROM consents WHERE state = 'pending' AND version = 1"); n != total {
		t.Fatalf("after the repeat: %d pending records at version 1, want %d", n, total)
	}
	checkSample()
	// One audit row per channel and request.
	if n := e.count(t, "SELECT count(*) FROM imports WHERE path = 'api:crm'"); n != 2*2*total/batch {
		t.Errorf("%d imports rows, want %d", n, 2*2*total/batch)
	}
}

// fileVerdict is what the file import says of a line: "" when valid.
func fileVerdict(t *testing.T, ch upload.Channel, line string) *upload.Rejection {
	t.Helper()
	s := upload.NewScanner(strings.NewReader(line), "f.txt", upload.Options{Channel: ch, Now: testNow})
	if !s.Scan() {
		t.Fatalf("%q: no line (%v)", line, s.Err())
	}
	_, rej := s.Line()
	return rej
}

// TestBadItemsAreRejectedLikeFileLines sends bad items between good ones:
// each bad one gets the field and message the file import gives the same
// value, the good ones are stored.
func TestBadItemsAreRejectedLikeFileLines(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	good := func(n int) map[string]string {
		return map[string]string{"recipient": fmt.Sprintf("9053300000%02d", n), "type": "MESAJ", "status": "ONAY",
			"consentDate": "2025-05-15 14:23:00", "platform": "web"}
	}
	// Each bad item: the file line with the same values, in upload's format.
	type bad struct {
		item map[string]string
		ch   upload.Channel
		line string
	}
	mail := "user" + at + "example.com"
	bads := []bad{
		{map[string]string{"recipient": "05331234562", "channel": "sms", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "web"},
			upload.SMS, "05331234562; web; ONAY; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": "+90 533 123 45 62", "channel": "sms", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "web"},
			upload.SMS, "+90 533 123 45 62; web; ONAY; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": "user.example.com", "channel": "email", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "web"},
			upload.Email, "user.example.com; web; ONAY; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": "ayşe" + at + "example.com", "type": "EPOSTA", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "web"},
			upload.Email, "ayşe" + at + "example.com; web; ONAY; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": mail, "type": "EPOSTA", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "IYS_WEB"},
			upload.Email, mail + "; IYS_WEB; ONAY; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": mail, "type": "EPOSTA", "status": "ONAY", "consentDate": "2025-05-15 14:23:00"},
			upload.Email, mail + "; ; ONAY; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": "905331234562", "type": "MESAJ", "status": "Onay", "consentDate": "2025-05-15 14:23:00", "platform": "sms"},
			upload.SMS, "905331234562; sms; Onay; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": "905331234562", "type": "ARAMA", "status": "RED", "consentDate": "2025-05-15 14:23:00", "platform": "sms"},
			upload.SMS, "905331234562; sms; RED; 15.05.2025 14:23:00"},
		{map[string]string{"recipient": "905331234562", "type": "MESAJ", "status": "RET", "consentDate": "2025-05-20 12:05:01", "platform": "sms"},
			upload.SMS, "905331234562; sms; RET; 20.05.2025 12:05:01"},
		{map[string]string{"recipient": "905331234562", "type": "MESAJ", "status": "RET", "consentDate": "2025-05-20T09:05:01Z", "platform": "sms"},
			upload.SMS, "905331234562; sms; RET; 20.05.2025 12:05:01"},
		{map[string]string{"recipient": "905331234562", "type": "MESAJ", "status": "RET", "consentDate": "2015-04-30 23:59:59", "platform": "sms"},
			upload.SMS, "905331234562; sms; RET; 30.04.2015 23:59:59"},
		{map[string]string{"recipient": "905331234562", "type": "MESAJ", "status": "RET", "consentDate": "2025-05-15 14:23:00", "platform": "sms",
			"externalId": strings.Repeat("x", 256)},
			upload.SMS, "905331234562; sms; RET; 15.05.2025 14:23:00; " + strings.Repeat("x", 256)},
		{map[string]string{"recipient": "905331234562", "type": "MESAJ", "status": "RET", "consentDate": "2025-05-15 14:23:00", "platform": "sms",
			"externalId": "a\u0085b"},
			upload.SMS, "905331234562; sms; RET; 15.05.2025 14:23:00; a\u0085b"},
		// Several faults: the first in the file's order.
		{map[string]string{"recipient": "12", "type": "MESAJ", "status": "yes", "consentDate": "yesterday", "platform": ""},
			upload.SMS, "12; ; yes; yesterday"},
	}
	var items []map[string]string
	for i, b := range bads {
		items = append(items, good(2*i), b.item)
	}
	items = append(items, good(2*len(bads)))
	r := e.send(t, "B", items)
	for i, b := range bads {
		want := fileVerdict(t, b.ch, b.line)
		if want == nil {
			t.Fatalf("%q is a valid line", b.line)
		}
		got := r.Items[2*i+1]
		if got.Verdict != VerdictRejected || got.Field != want.Field || got.Message != want.Message {
			t.Errorf("item %d: %+v, want rejected %s: %s (as the line %q)", 2*i+1, got, want.Field, want.Message, b.line)
		}
	}
	for i := 0; i < len(items); i += 2 {
		if v := r.Items[i].Verdict; v != VerdictAccepted {
			t.Errorf("good item %d: %+v", i, r.Items[i])
		}
	}
	if r.Accepted != len(bads)+1 || r.Rejected != len(bads) {
		t.Errorf("counts %+v", r)
	}
	if n := e.count(t, "SELECT count(*) FROM consents"); n != len(bads)+1 {
		t.Errorf("%d records stored, want the %d good ones", n, len(bads)+1)
	}
	// The audit rows count the rejected items in their channel.
	if n := e.count(t, "SELECT coalesce(sum(rejected), 0) FROM imports"); n != len(bads) {
		t.Errorf("imports count %d rejected, want %d", n, len(bads))
	}
}

// TestItemFieldsOfTheAPI covers what files do not have: type, channel,
// recipient type, source; and verdicts within one body.
func TestItemFieldsOfTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	mail := "x" + at + "example.com"
	base := func(kv ...string) map[string]string {
		m := map[string]string{"recipient": "905331234562", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "web"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		item  map[string]string
		field string // "" for accepted
	}{
		{base(), FieldType},
		{base("type", "mesaj"), FieldType},
		{base("channel", "SMS"), FieldChannel},
		{base("channel", "email", "type", "MESAJ"), FieldChannel},
		{base("channel", "sms", "type", "ARAMA"), ""},
		{base("type", "EPOSTA", "recipient", mail, "recipientType", "tacir"), FieldRecipientType},
		{base("type", "EPOSTA", "recipient", mail, "recipientType", "TACIR"), ""},
		{base("type", "MESAJ", "recipient", "905331234563", "source", "HS_NOPE", "platform", ""), upload.FieldSource},
		{base("type", "MESAJ", "recipient", "905331234563", "source", "HS_KARAR", "platform", "", "status", "RET"), ""},
		{base("type", "MESAJ", "recipient", "905331234564", "source", "HS_WEB"), upload.FieldSource},
		// Verdicts in one body: the later of two equal times wins, the older loses.
		{base("type", "MESAJ", "recipient", "905331234565", "status", "ONAY"), ""},
		{base("type", "MESAJ", "recipient", "905331234565", "status", "RET"), ""},
		{base("type", "MESAJ", "recipient", "905331234565", "consentDate", "2025-05-14 10:00:00"), ""},
	}
	var items []map[string]string
	for _, c := range cases {
		items = append(items, c.item)
	}
	r := e.send(t, "B", items)
	for i, c := range cases {
		got := r.Items[i]
		if c.field != "" && (got.Verdict != VerdictRejected || got.Field != c.field) {
			t.Errorf("item %d %v: %+v, want rejected on %s", i, c.item, got, c.field)
		}
		if c.field == "" && got.Verdict == VerdictRejected {
			t.Errorf("item %d %v: %+v", i, c.item, got)
		}
	}
	if v := []string{r.Items[10].Verdict, r.Items[11].Verdict, r.Items[12].Verdict}; !slices.Equal(v, []string{"superseded", "accepted", "superseded"}) {
		t.Errorf("verdicts in one body: %v", v)
	}
	var rt, status string
	if err := e.db.QueryRow("SELECT recipient_type FROM consents WHERE recipient = $1", mail).Scan(&rt); err != nil || rt != "TACIR" {
		t.Errorf("recipient type %q (%v)", rt, err)
	}
	if err := e.db.QueryRow("SELECT status FROM consents WHERE recipient = '+905331234565'").Scan(&status); err != nil || status != "RET" {
		t.Errorf("status %q (%v)", status, err)
	}

	// Connector C: EPOSTA only, TACIR and HS_MOBIL by default.
	body, _ := json.Marshal([]map[string]string{
		base("type", "MESAJ"),
		base("channel", "email", "recipient", mail, "platform", "kiosk"),
		base("channel", "email", "recipient", mail, "consentDate", "2025-01-02 10:00:00"),
	})
	a := e.post(t, "C", tokWeb, "application/json; charset=utf-8", body)
	var rc Response
	if err := json.Unmarshal(a.body, &rc); err != nil || a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if rc.Items[0].Field != FieldType || rc.Items[1].Verdict != VerdictAccepted || !slices.Equal(rc.Items[1].Warnings, []string{WarningUnknownPlatform}) ||
		rc.Items[2].Verdict != VerdictSuperseded || !slices.Equal(rc.Items[2].Warnings, []string{WarningTooOld}) {
		t.Errorf("connector C: %+v", rc.Items)
	}
	var src string
	if err := e.db.QueryRow("SELECT recipient_type, source FROM consents WHERE connector_id = $1", e.c.ID).Scan(&rt, &src); err != nil || rt != "TACIR" || src != "HS_MOBIL" {
		t.Errorf("connector C stored %s %s (%v)", rt, src, err)
	}
}

// TestTokensAreChecked: no token, a wrong one, another scheme, and another
// connector's token are refused, and nothing is written.
func TestTokensAreChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body, _ := json.Marshal([]map[string]string{{"recipient": "905331234562", "type": "MESAJ", "status": "ONAY",
		"consentDate": "2025-05-15 14:23:00", "platform": "web"}})
	before := e.written(t)
	for _, c := range []struct {
		name, auth, brand string
		status            int
	}{
		{"no token", "", "B", 401},
		{"wrong token", "Bearer " + tokCRM + "x", "B", 401},
		{"a hash as token", "Bearer " + hashOf(tokCRM), "B", 401},
		{"empty bearer", "Bearer ", "B", 401},
		{"basic", "Basic " + tokCRM, "B", 401},
		{"other connector's token", "Bearer " + tokWeb, "B", 403},
		{"token for other connectors", "Bearer " + tokOld, "B", 403},
		{"to an unknown connector", "Bearer " + tokOld, "D", 404},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/connectors/"+c.brand+"/consents", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		a := do(t, req)
		code := map[int]string{401: "unauthorized", 403: "forbidden", 404: "unknown_connector"}[c.status]
		wantError(t, a, c.status, code)
		if c.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, a.header.Get("WWW-Authenticate"))
		}
	}
	if after := e.written(t); after != before {
		t.Fatalf("refused requests wrote: %v -> %v", before, after)
	}
	// The same body with the right token, lower-case scheme, is stored.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/connectors/B/consents", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "bearer "+tokCRM)
	if a := do(t, req); a.status != 200 {
		t.Fatalf("right token: %d %s", a.status, a.body)
	}
	if after := e.written(t); after != [2]int{before[0] + 1, before[1] + 1} {
		t.Fatalf("right token wrote %v -> %v", before, after)
	}
}

func TestNewRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	h := hashOf("x")
	for _, entries := range [][]string{nil, {"a"}, {"a:" + h[:62]}, {"a:" + h[:63] + "g"}, {"a:" + h + ":"},
		{"a:" + h, "a:" + hashOf("y")}, {"a:" + h, "b:" + h}, {":" + h}} {
		_, err := New(e.st, entries, nil)
		if err == nil {
			t.Errorf("%q accepted", entries)
		} else if strings.Contains(err.Error(), h[:16]) {
			t.Errorf("%q: the error shows the hash: %v", entries, err)
		}
	}
}

// TestBodyLimitsAndErrors: 413, 415, 422, 404 and 405, each with a JSON
// error, and nothing written.
func TestBodyLimitsAndErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, WithMaxItems(3), WithMaxBytes(1000))
	item := `{"recipient":"905331234562","type":"MESAJ","status":"ONAY","consentDate":"2025-05-15 14:23:00","platform":"web"}`
	before := e.written(t)
	cases := []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"4 items over 3", "application/json", "[" + strings.Repeat(item+",", 3) + item + "]", 413, "too_large"},
		{"over the byte cap", "application/json", `[{"recipient":"` + strings.Repeat("9", 1200) + `"}]`, 413, "too_large"},
		{"text/plain", "text/plain", "[" + item + "]", 415, "unsupported_media_type"},
		{"no content type", "", "[" + item + "]", 415, "unsupported_media_type"},
		{"form", "application/x-www-form-urlencoded", "a=b", 415, "unsupported_media_type"},
		{"object", "application/json", item, 422, "malformed_body"},
		{"empty", "application/json", "", 422, "malformed_body"},
		{"bad json", "application/json", "[" + item + ",{]", 422, "malformed_body"},
		{"cut short", "application/json", "[" + item, 422, "malformed_body"},
		{"number value", "application/json", `[{"recipient":905331234562}]`, 422, "malformed_body"},
		{"item not an object", "application/json", `[1]`, 422, "malformed_body"},
		{"unknown key", "application/json", `[{"recipient":"905331234562","consent_date":"x"}]`, 422, "malformed_body"},
		{"two arrays", "application/json", "[" + item + "][]", 422, "malformed_body"},
		{"array of arrays", "application/json", "[[]]", 422, "malformed_body"},
	}
	for _, c := range cases {
		a := e.post(t, "B", tokCRM, c.ctype, []byte(c.body))
		t.Run(c.name, func(t *testing.T) { wantError(t, a, c.status, c.code) })
		if strings.Contains(string(a.body), "905331234562") {
			t.Errorf("%s: the error quotes the body: %s", c.name, a.body)
		}
	}
	// 3 items, at the limit, are taken.
	if a := e.post(t, "B", tokCRM, "application/json", []byte("["+item+","+item+","+item+"]")); a.status != 200 {
		t.Errorf("3 items: %d %s", a.status, a.body)
	}
	if a := e.post(t, "B", tokCRM, "application/json", []byte("[]")); a.status != 200 {
		t.Errorf("no items: %d %s", a.status, a.body)
	}
	after := e.written(t)
	if after[0] != before[0]+1 {
		t.Errorf("refused requests wrote: %v -> %v", before, after)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/connectors/B/consents", nil)
	wantError(t, do(t, req), 405, "method_not_allowed")
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/v1/nothing", nil)
	wantError(t, do(t, req), 404, "not_found")
}

// TestDateFormatsGiveTheSameMoment: RFC 3339 (any offset) and İYS's format
// (Türkiye time) store the same moment, and are the same consent.
func TestDateFormatsGiveTheSameMoment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	stamps := []string{"2025-05-15 14:23:00", "2025-05-15T14:23:00+03:00", "2025-05-15T11:23:00Z", "2025-05-15T13:23:00.4+02:00"}
	var items []map[string]string
	for i, s := range stamps {
		items = append(items, map[string]string{"recipient": fmt.Sprintf("90533123456%d", i), "type": "MESAJ", "status": "ONAY",
			"consentDate": s, "platform": "web"})
	}
	if r := e.send(t, "B", items); r.Accepted != len(stamps) {
		t.Fatalf("%+v", r)
	}
	want := time.Date(2025, 5, 15, 14, 23, 0, 0, consent.Istanbul)
	rows, err := e.db.Query("SELECT consent_date FROM consents")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var got time.Time
		if err := rows.Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Errorf("stored %v, want %v", got, want)
		}
		n++
	}
	if n != len(stamps) {
		t.Fatalf("%d records", n)
	}
	// Each record sent again in another of the formats is unchanged.
	for i := range items {
		items[i]["consentDate"] = stamps[(i+1)%len(stamps)]
	}
	if r := e.send(t, "B", items); r.Unchanged != len(stamps) {
		t.Fatalf("the same moments in other formats: %+v", r.Items)
	}
}

// TestOpenAPIMatchesTheHandler: the served description is the embedded
// file, valid JSON, and names exactly the item keys the handler reads and
// the statuses it answers.
func TestOpenAPIMatchesTheHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/openapi.json", nil)
	a := do(t, req)
	if a.status != 200 || string(a.body) != string(OpenAPI) {
		t.Fatalf("%d %.100s", a.status, a.body)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(a.body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("%v %q", err, doc.OpenAPI)
	}
	post, ok := doc.Paths["/v1/connectors/{brandCode}/consents"]["post"]
	if !ok {
		t.Fatal("no POST /v1/connectors/{brandCode}/consents")
	}
	for _, code := range []string{"200", "401", "403", "404", "405", "413", "415", "422"} {
		if _, ok := post.Responses[code]; !ok {
			t.Errorf("response %s not described", code)
		}
	}
	keys := func(typ reflect.Type) []string {
		var k []string
		for i := 0; i < typ.NumField(); i++ {
			k = append(k, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(k)
		return k
	}
	props := func(schema string) []string {
		var k []string
		for p := range doc.Components.Schemas[schema].Properties {
			k = append(k, p)
		}
		slices.Sort(k)
		return k
	}
	for schema, typ := range map[string]reflect.Type{"Consent": reflect.TypeFor[wireItem](),
		"Response": reflect.TypeFor[Response](), "Result": reflect.TypeFor[Result]()} {
		if got, want := props(schema), keys(typ); !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, the handler %v", schema, got, want)
		}
	}
}

// TestLogsHoldNoPersonalData: recipients, rejected or stored, never reach
// the logs.
func TestLogsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	e := newEnv(t, zap.New(core))
	mail := "secret.person" + at + "example.com"
	e.send(t, "B", []map[string]string{
		{"recipient": mail, "channel": "email", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "web"},
		{"recipient": "905339998877", "channel": "sms", "status": "bad", "consentDate": "2025-05-15 14:23:00", "platform": "web"},
		{"recipient": "0533999887766", "channel": "sms", "status": "ONAY", "consentDate": "2025-05-15 14:23:00", "platform": "web"},
	})
	e.post(t, "B", tokCRM, "application/json", []byte(`[{"recipient":"905339998877","x":1}]`))
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, entry := range logs.All() {
		text := fmt.Sprintf("%s %v", entry.Message, entry.ContextMap())
		for _, secret := range []string{"secret.person", "9998877", "99988", tokCRM} {
			if strings.Contains(text, secret) {
				t.Errorf("log entry holds %q: %s", secret, text)
			}
		}
	}
}
