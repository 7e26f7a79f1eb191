package intake

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
	"github.com/iys-sync/iys-sync/internal/sync/iysadapter"
)

// checkGet asks srv for one recipient's permission with tok; params are the
// query. It wants a 200 and returns the answer.
func checkGet(t testing.TB, srv, brand, tok string, params url.Values) Permission {
	t.Helper()
	a := getPermission(t, srv, brand, tok, params.Encode())
	if a.status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", params.Encode(), a.status, a.body)
	}
	var p Permission
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%v: %s", err, a.body)
	}
	return p
}

func getPermission(t testing.TB, srv, brand, tok, query string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv+"/v1/connectors/"+brand+"/permissions?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, req)
}

func postPermissions(t testing.TB, srv, brand, tok string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv+"/v1/connectors/"+brand+"/permissions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, req)
}

// checkBatch asks srv for recipients of typ at once and wants a 200.
func checkBatch(t testing.TB, srv, brand, typ string, recipients []string) []Permission {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": typ, "recipients": recipients})
	a := postPermissions(t, srv, brand, tokCRM, body)
	if a.status != http.StatusOK {
		t.Fatalf("POST: status %d: %s", a.status, a.body)
	}
	var r PermissionsResponse
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("%v: %s", err, a.body)
	}
	if len(r.Results) != len(recipients) {
		t.Fatalf("%d results for %d recipients", len(r.Results), len(recipients))
	}
	return r.Results
}

// TestPermissionAnswers brings records to every state through the real
// paths (the intake, a sync and a pull against the sandbox), then asks for
// each, one at a time and in a batch, from a handler that allows only what
// İYS holds and from one that allows pending ONAYs.
func TestPermissionAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storedb.NewDB(t)
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sb := sandboxtest.Start(t, sandbox.Options{Username: "u", Password: "p", AsyncDelay: time.Millisecond})
	client := iysclienttest.New(t, sb.URL, iysclient.Credentials{Username: "u", Password: "p"})
	conn, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: "600001", IYSCode: "700001", FirstSyncAt: time.Now(),
		Channels: []consent.Type{consent.TypeMesaj, consent.TypeEposta}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, iysadapter.New(client), engine.Options{BatchSize: 100, Concurrency: 1,
		PollInitial: time.Millisecond, PollMax: 5 * time.Millisecond, Puller: pull.New(st, client, zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	run := func() {
		t.Helper()
		sum, err := eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerRunNow})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range sum.Connectors {
			if c.Err != "" {
				t.Fatalf("run: %s", c.Err)
			}
		}
	}
	tokens := []string{"crm:" + hashOf(tokCRM), "web:" + hashOf(tokWeb) + ":600002"}
	newServer := func(opts ...Option) string {
		h, err := New(st, tokens, zap.NewNop(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	strict, relaxed := newServer(), newServer(WithAllowPending(true))

	phone := func(n int) string { return fmt.Sprintf("9053300000%02d", n) }
	email := "person" + at + "example.com"
	post := func(rcpt, typ, status string, date time.Time) {
		t.Helper()
		body, _ := json.Marshal([]map[string]string{{"recipient": rcpt, "type": typ, "status": status, "platform": "web",
			"consentDate": date.Format(time.RFC3339)}})
		req, _ := http.NewRequest(http.MethodPost, strict+"/v1/connectors/600001/consents", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokCRM)
		req.Header.Set("Content-Type", "application/json")
		a := do(t, req)
		if a.status != http.StatusOK || !strings.Contains(string(a.body), `"accepted":1`) {
			t.Fatalf("post %s: %d %s", typ, a.status, a.body)
		}
	}
	citizen := func(rcpt, status string) {
		sb.Admin.Citizen(sandboxtest.Change{IYSCode: "700001", BrandCode: "600001", Recipient: "+" + rcpt,
			RecipientType: "BIREYSEL", Type: "MESAJ", Status: status, Source: "IYS_MOBIL"})
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)

	// 1: ONAYs synced (1, 3, 4, the email) and one İYS refuses (8: too old).
	for _, n := range []int{1, 3, 4} {
		post(phone(n), "MESAJ", "ONAY", base)
	}
	post(email, "EPOSTA", "ONAY", base)
	post(phone(8), "MESAJ", "ONAY", base.AddDate(0, 0, -20))
	run()
	// 2: citizens' changes through İYS, pulled: a RET over our synced ONAY
	// (3), an ONAY (6) and a RET (7) of recipients we did not hold.
	citizen(phone(3), "RET")
	citizen(phone(6), "ONAY")
	citizen(phone(7), "RET")
	run()
	// 3: newer consents not yet sent: an ONAY (2), a RET over a synced ONAY
	// (4), an ONAY over a pulled RET (7), and two ONAYs that are then put in
	// flight (9) and failed (10) as a sync would leave them.
	post(phone(2), "MESAJ", "ONAY", base)
	post(phone(4), "MESAJ", "RET", base.Add(time.Second))
	post(phone(7), "MESAJ", "ONAY", time.Now().Add(time.Minute))
	post(phone(9), "MESAJ", "ONAY", base)
	post(phone(10), "MESAJ", "ONAY", base)
	for n, state := range map[int]string{9: "in_flight", 10: "failed"} {
		if _, err := db.Exec("UPDATE consents SET state = $1 WHERE recipient = $2", state, "+"+phone(n)); err != nil {
			t.Fatal(err)
		}
	}
	// The fixtures are what the cases below say they are.
	wantState := map[string]string{phone(1): "synced accepted", phone(2): "pending ", phone(3): "synced from_iys",
		phone(4): "pending ", phone(6): "synced from_iys", phone(7): "pending ", phone(8): "rejected too_old",
		phone(9): "in_flight ", phone(10): "failed "}
	for rcpt, want := range wantState {
		var got string
		if err := db.QueryRow("SELECT state || ' ' || coalesce(outcome, '') FROM consents WHERE recipient = $1",
			"+"+rcpt).Scan(&got); err != nil || got != want {
			t.Fatalf("fixture %s: %q (%v), want %q", rcpt, got, err, want)
		}
	}

	type want struct {
		status        string
		source        string // "HS": HS_WEB; "IYS": IYS_MOBIL
		synced        bool
		strict, relax bool
	}
	cases := []struct {
		name, typ, rcpt string
		want            want
	}{
		{"synced ONAY", "MESAJ", phone(1), want{"ONAY", "HS", true, true, true}},
		{"synced ONAY, E.164", "MESAJ", "+" + phone(1), want{"ONAY", "HS", true, true, true}},
		{"synced ONAY, email in capitals", "EPOSTA", " PERSON" + at + "Example.COM", want{"ONAY", "HS", true, true, true}},
		{"pending ONAY", "MESAJ", phone(2), want{"ONAY", "HS", false, false, true}},
		{"pulled RET over a synced ONAY", "MESAJ", phone(3), want{"RET", "IYS", true, false, false}},
		{"pending RET over a synced ONAY", "MESAJ", phone(4), want{"RET", "HS", false, false, false}},
		{"pulled ONAY", "MESAJ", phone(6), want{"ONAY", "IYS", true, true, true}},
		{"pending ONAY over a pulled RET", "MESAJ", phone(7), want{"ONAY", "HS", false, false, true}},
		{"ONAY İYS refused", "MESAJ", phone(8), want{"ONAY", "HS", false, false, false}},
		{"ONAY in flight", "MESAJ", phone(9), want{"ONAY", "HS", false, false, true}},
		{"ONAY failed", "MESAJ", phone(10), want{"ONAY", "HS", false, false, false}},
		{"unknown recipient", "MESAJ", phone(11), want{"NONE", "", false, false, false}},
		{"another type", "EPOSTA", "other" + at + "example.com", want{"NONE", "", false, false, false}},
	}
	stored := map[string]string{} // recipient as stored -> consent date, from the records
	rows, err := db.Query("SELECT recipient, consent_date FROM consents WHERE connector_id = $1", conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		var d time.Time
		if err := rows.Scan(&r, &d); err != nil {
			t.Fatal(err)
		}
		stored[r] = d.In(consent.Istanbul).Format(time.RFC3339)
	}
	rows.Close()
	before := time.Now().Add(-time.Second)
	for _, c := range cases {
		for _, srv := range []struct {
			url     string
			allowed bool
		}{{strict, c.want.strict}, {relaxed, c.want.relax}} {
			p := checkGet(t, srv.url, "600001", tokCRM, url.Values{"type": {c.typ}, "recipient": {c.rcpt}})
			norm, err := consent.NormalizeRecipient(consent.Type(c.typ), c.rcpt)
			if err != nil {
				t.Fatal(err)
			}
			src := map[string]string{"HS": "HS_WEB", "IYS": "IYS_MOBIL", "": ""}[c.want.source]
			date := ""
			if c.want.status != "NONE" {
				date = stored[norm]
			}
			if p.Recipient != norm || p.Type != c.typ || p.RecipientType != "BIREYSEL" || p.Status != c.want.status ||
				p.Allowed != srv.allowed || p.SyncedToIYS != c.want.synced || p.Source != src || p.ConsentDate != date {
				t.Errorf("%s (allow pending: %v): %+v, want %+v allowed %v date %q", c.name, srv.url == relaxed, p, c.want,
					srv.allowed, date)
			}
			if asOf, err := time.Parse(time.RFC3339, p.AsOf); err != nil || asOf.Before(before.Truncate(time.Second)) ||
				asOf.After(time.Now()) {
				t.Errorf("%s: asOf %q (%v)", c.name, p.AsOf, err)
			}
		}
	}

	// A recipient is looked up with its recipient type: the connector's by default.
	if p := checkGet(t, strict, "600001", tokCRM, url.Values{"type": {"MESAJ"}, "recipient": {phone(1)},
		"recipientType": {"TACIR"}}); p.Status != "NONE" || p.Allowed || p.RecipientType != "TACIR" {
		t.Errorf("TACIR: %+v", p)
	}
	if p := checkGet(t, strict, "600001", tokCRM, url.Values{"type": {"MESAJ"}, "recipient": {phone(1)},
		"recipientType": {"BIREYSEL"}}); p.Status != "ONAY" || !p.Allowed {
		t.Errorf("BIREYSEL: %+v", p)
	}

	// A batch answers each recipient as a single check does, in request
	// order, repeats included.
	var recipients []string
	var singles []Permission
	for i := len(cases) - 1; i >= 0; i-- {
		if c := cases[i]; c.typ == "MESAJ" {
			recipients = append(recipients, c.rcpt)
			singles = append(singles, checkGet(t, strict, "600001", tokCRM, url.Values{"type": {"MESAJ"}, "recipient": {c.rcpt}}))
		}
	}
	recipients = append(recipients, recipients[0], recipients[3])
	singles = append(singles, singles[0], singles[3])
	for i, p := range checkBatch(t, strict, "600001", "MESAJ", recipients) {
		p.AsOf, singles[i].AsOf = "", ""
		if p != singles[i] {
			t.Errorf("batch result %d: %+v, single check %+v", i, p, singles[i])
		}
	}
	if r := checkBatch(t, strict, "600001", "MESAJ", []string{}); len(r) != 0 {
		t.Errorf("empty batch: %+v", r)
	}

	// A token for another brand is refused, one or many.
	wantError(t, getPermission(t, strict, "600001", tokWeb, "type=MESAJ&recipient="+phone(1)), http.StatusForbidden, "forbidden")
	body, _ := json.Marshal(map[string]any{"type": "MESAJ", "recipients": []string{phone(1)}})
	wantError(t, postPermissions(t, strict, "600001", tokWeb, body), http.StatusForbidden, "forbidden")
	wantError(t, getPermission(t, strict, "600001", "", "type=MESAJ&recipient="+phone(1)), http.StatusUnauthorized, "unauthorized")
	wantError(t, getPermission(t, strict, "600001", "not-a-token", "type=MESAJ&recipient="+phone(1)), http.StatusUnauthorized, "unauthorized")
	wantError(t, getPermission(t, strict, "600002", tokWeb, "type=MESAJ&recipient="+phone(1)), http.StatusNotFound, "unknown_connector")
}

// TestPermissionCheckRefusals: a request the check cannot answer gets a
// 4xx naming the parameter or field at fault, and reads no record.
func TestPermissionCheckRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	okPhone := "905331234562"
	gets := []struct {
		query, field, msg string
	}{
		{"recipient=" + okPhone, "type", "is missing"},
		{"type=SMS&recipient=" + okPhone, "type", "MESAJ, ARAMA or EPOSTA"},
		{"type=mesaj&recipient=" + okPhone, "type", "in capitals"},
		{"type=MESAJ", "recipient", "is missing"},
		{"type=MESAJ&recipient=05559876543", "recipient", "starts with 0"},
		{"type=MESAJ&recipient=90555-987-6543", "recipient", "digits only"},
		{"type=EPOSTA&recipient=not-an-email", "recipient", "exactly one @"},
		{"type=MESAJ&recipient=" + okPhone + "&recipientType=bireysel", "recipientType", "BIREYSEL or TACIR"},
		{"type=MESAJ&recipient=" + okPhone + "&recipient_type=TACIR", "recipient_type", "is not a parameter"},
		{"type=MESAJ&type=ARAMA&recipient=" + okPhone, "type", "more than once"},
	}
	for _, g := range gets {
		a := getPermission(t, e.srv.URL, "B", tokCRM, g.query)
		wantFieldError(t, a, http.StatusBadRequest, "bad_request", g.field, g.msg)
		if strings.Contains(string(a.body), "987") || strings.Contains(string(a.body), "not-an-email") {
			t.Errorf("%s: the answer repeats the recipient: %s", g.query, a.body)
		}
	}
	// Connector C keeps only EPOSTA: no record of MESAJ is ever held there.
	wantFieldError(t, getPermission(t, e.srv.URL, "C", tokCRM, "type=MESAJ&recipient="+okPhone), http.StatusBadRequest,
		"bad_request", "type", "not a channel of this connector")

	posts := []struct {
		body, field, msg string
		status           int
	}{
		{`{"type":"MESAJ","recipients":["905331234562","+905331234563","0533"]}`, "recipients[2]", "starts with 0", 400},
		{`{"type":"EPOSTA","recipients":["a` + at + `example.com","b` + at + `"]}`, "recipients[1]", "", 400},
		{`{"type":"MESAJ"}`, "recipients", "is missing", 400},
		{`{"type":"MESAJ","recipients":null}`, "recipients", "is missing", 400},
		{`{"type":"MESAJ","recipients":"905331234562"}`, "recipients", "array of strings", 400},
		{`{"type":"MESAJ","recipients":[905331234562]}`, "recipients", "array of strings", 400},
		{`{"type":1,"recipients":[]}`, "type", "must be a string", 400},
		{`{"recipients":["905331234562"]}`, "type", "is missing", 400},
		{`{"type":"MESAJ","recipients":[],"extra":1}`, "", "no other field", 400},
		{`{"type":"MESAJ","recipients":[]} {}`, "", "more than one", 400},
		{`[]`, "", "not {", 400},
		{``, "", "empty", 400},
		{`{"type":"MESAJ","recipientType":"X","recipients":[]}`, "recipientType", "BIREYSEL or TACIR", 400},
		{`{"type":"MESAJ","recipients":[` + strings.Repeat(`"905331234562",`, MaxPermissionRecipients) + `"905331234562"]}`,
			"recipients", "more than 10000", 413},
		{`{"type":"MESAJ","recipients":["` + strings.Repeat("9", maxPermissionBytes) + `"]}`, "", "over", 413},
	}
	for _, p := range posts {
		code := "bad_request"
		if p.status == 413 {
			code = "too_large"
		}
		wantFieldError(t, postPermissions(t, e.srv.URL, "B", tokCRM, []byte(p.body)), p.status, code, p.field, p.msg)
	}
	// Exactly 10,000 is taken.
	big := make([]string, MaxPermissionRecipients)
	for i := range big {
		big[i] = fmt.Sprintf("90533%07d", i)
	}
	for i, r := range checkBatch(t, e.srv.URL, "B", "MESAJ", big) {
		if r.Status != "NONE" || r.Recipient != "+"+big[i] {
			t.Fatalf("result %d: %+v", i, r)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/connectors/B/permissions", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+tokCRM)
	req.Header.Set("Content-Type", "text/plain")
	wantError(t, do(t, req), http.StatusUnsupportedMediaType, "unsupported_media_type")
	req, _ = http.NewRequest(http.MethodPut, e.srv.URL+"/v1/connectors/B/permissions", nil)
	req.Header.Set("Authorization", "Bearer "+tokCRM)
	a := do(t, req)
	wantError(t, a, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := a.header.Get("Allow"); got != "GET, POST" {
		t.Errorf("Allow %q", got)
	}
	wantError(t, getPermission(t, e.srv.URL, "B%20B", tokCRM, "type=MESAJ&recipient="+okPhone), http.StatusBadRequest, "bad_brand_code")
}

// wantFieldError is wantError that also wants the field named, in the
// field and at the start of the message, and msg in the message.
func wantFieldError(t testing.TB, a answer, status int, code, field, msg string) {
	t.Helper()
	wantError(t, a, status, code)
	var b errorBody
	if err := json.Unmarshal(a.body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Error.Field != field || !strings.HasPrefix(b.Error.Message, field) || !strings.Contains(b.Error.Message, msg) {
		t.Errorf("%s: want field %q and %q in the message", a.body, field, msg)
	}
}
