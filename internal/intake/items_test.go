package intake

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/upload"
)

// TestPhonesAsPeopleWriteThem: E.164 and the files' digits give the same
// record; 10 digits starting with 5 are kept with a warning.
func TestPhonesAsPeopleWriteThem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	item := func(phone string) map[string]string {
		return map[string]string{"recipient": phone, "type": "MESAJ", "status": "ONAY", "consentDate": "2025-05-19 14:23:00", "platform": "sms"}
	}
	r := e.send(t, "B", []map[string]string{item("+905331234562"), item("5331234562"), item("+5331234563"), item("+0533 123 45 62")})
	if r.Items[0].Verdict != VerdictAccepted || len(r.Items[0].Warnings) != 0 {
		t.Errorf("E.164: %+v", r.Items[0])
	}
	for _, i := range []int{1, 2} {
		if it := r.Items[i]; it.Verdict != VerdictAccepted || !slices.Equal(it.Warnings, []string{WarningMaybeMissingCountryCode}) {
			t.Errorf("item %d: %+v, want accepted with %s", i, it, WarningMaybeMissingCountryCode)
		}
	}
	if it := r.Items[3]; it.Verdict != VerdictRejected || it.Field != upload.FieldPhone {
		t.Errorf("item 3: %+v, want rejected on phone", it)
	}
	// Stored in E.164, as given: nothing is guessed.
	for _, rcpt := range []string{"+905331234562", "+5331234562", "+5331234563"} {
		if n := e.count(t, "SELECT count(*) FROM consents WHERE recipient = $1", rcpt); n != 1 {
			t.Errorf("%s stored %d times", rcpt, n)
		}
	}
	// The files' form of the same number is the same record, unchanged.
	if r := e.send(t, "B", []map[string]string{item("905331234562")}); r.Items[0].Verdict != VerdictUnchanged {
		t.Errorf("digits after E.164: %+v, want unchanged", r.Items[0])
	}
}

// TestSourceRulesAtIntake: HS_2015 with another date and HS_KARAR with ONAY
// are refused here, naming the field to fix and the rule, not at sync.
// HS_2015 carries no 3-business-day warning.
func TestSourceRulesAtIntake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	item := func(phone string, kv ...string) map[string]string {
		m := map[string]string{"recipient": phone, "type": "MESAJ", "status": "ONAY", "consentDate": "2025-05-19 14:23:00"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	r := e.send(t, "B", []map[string]string{
		item("905331234501", "source", "HS_2015", "consentDate", "2015-05-01 00:00:00"),
		item("905331234502", "source", "HS_2015", "consentDate", "2015-05-01T00:00:00+03:00"),
		item("905331234503", "source", "HS_2015"),
		item("905331234504", "platform", "hs_2015", "consentDate", "2014-06-01 10:00:00"),
		item("905331234505", "source", "HS_KARAR"),
		item("905331234506", "platform", "HS_KARAR"),
		item("905331234507", "source", "HS_KARAR", "status", "RET"),
	})
	want := []struct {
		verdict, field, words string
	}{
		{VerdictAccepted, "", ""},
		{VerdictAccepted, "", ""},
		{VerdictRejected, upload.FieldTimestamp, "01.05.2015 00:00:00 with HS_2015"},
		{VerdictRejected, upload.FieldTimestamp, "HS_2015"},
		{VerdictRejected, upload.FieldSource, "RET only"},
		{VerdictRejected, upload.FieldPlatform, "RET only"},
		{VerdictAccepted, "", ""},
	}
	for i, w := range want {
		got := r.Items[i]
		if got.Verdict != w.verdict || got.Field != w.field || !strings.Contains(got.Message, w.words) {
			t.Errorf("item %d: %+v, want %s %s %q", i, got, w.verdict, w.field, w.words)
		}
		if slices.Contains(got.Warnings, WarningTooOld) {
			t.Errorf("item %d: %+v warns of an old date", i, got)
		}
	}
	if n := e.count(t, "SELECT count(*) FROM consents"); n != 3 {
		t.Errorf("%d records stored, want the 3 valid ones", n)
	}
	if n := e.count(t, "SELECT count(*) FROM consents WHERE source = 'HS_2015' AND consent_date = '2015-05-01 00:00:00+03'"); n != 2 {
		t.Errorf("%d HS_2015 records on their date, want 2", n)
	}
}

// TestBrandCodeInThePath: a path segment that is no brand code is refused
// with the shape of a code, and nothing reaches the store.
func TestBrandCodeInThePath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := []byte(`[{"recipient":"905331234562","type":"MESAJ","status":"ONAY","consentDate":"2025-05-19 14:23:00","platform":"sms"}]`)
	before := e.written(t)
	for _, seg := range []string{"a%2Fb", "%0AB", "%1B%5B31mB", "B%20", "B-1", "%C5%9F", strings.Repeat("1", 21)} {
		a := e.post(t, seg, tokCRM, "application/json", body)
		wantError(t, a, http.StatusBadRequest, "bad_brand_code")
		if !strings.Contains(string(a.body), "1 to 20 ASCII letters or digits") {
			t.Errorf("%s: %s", seg, a.body)
		}
	}
	// Dot segments never reach the handler's store either.
	for _, seg := range []string{"..", "%2E%2E"} {
		if a := e.post(t, seg, tokCRM, "application/json", body); a.status == http.StatusOK {
			t.Errorf("%s: %d %s", seg, a.status, a.body)
		}
	}
	if after := e.written(t); after != before {
		t.Errorf("written %v, before %v", after, before)
	}
	if r := e.send(t, "B", []map[string]string{{"recipient": "905331234562", "type": "MESAJ", "status": "ONAY",
		"consentDate": "2025-05-19 14:23:00", "platform": "sms"}}); r.Accepted != 1 {
		t.Errorf("a good code: %+v", r)
	}
	// The description says so too.
	for _, s := range []string{`"400"`, `"pattern": "^[A-Za-z0-9]{1,20}$"`, `"maybeMissingCountryCode"`} {
		if !strings.Contains(string(OpenAPI), s) {
			t.Errorf("openapi.json lacks %s", s)
		}
	}
}
