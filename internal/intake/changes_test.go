package intake

import (
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

// feedPage asks for one page of the feed and wants a 200.
func feedPage(t testing.TB, srv, brand, tok, after string, limit int) ChangesResponse {
	t.Helper()
	q := url.Values{"after": {after}, "limit": {fmt.Sprint(limit)}}
	req, _ := http.NewRequest(http.MethodGet, srv+"/v1/connectors/"+brand+"/changes?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	a := do(t, req)
	if a.status != http.StatusOK {
		t.Fatalf("feed: status %d: %s", a.status, a.body)
	}
	var r ChangesResponse
	dec := json.NewDecoder(strings.NewReader(string(a.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%v: %s", err, a.body)
	}
	if r.Changes == nil {
		t.Fatalf("changes is null, want a list: %s", a.body)
	}
	if len(r.Changes) == 0 && r.Next != after {
		t.Fatalf("an empty page moves the cursor from %q to %q", after, r.Next)
	}
	return r
}

// feedFrom reads the feed from after in pages of limit until it holds want
// changes, and returns them with the cursor to resume from.
func feedFrom(t testing.TB, srv, after string, limit, want int) ([]Change, string) {
	t.Helper()
	var out []Change
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < want {
		p := feedPage(t, srv, "600001", tokCRM, after, limit)
		if len(p.Changes) > limit {
			t.Fatalf("a page of %d changes, limit %d", len(p.Changes), limit)
		}
		out = append(out, p.Changes...)
		after = p.Next
		if len(p.Changes) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d changes, want %d: %+v", len(out), want, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out, after
}

// summary is a change as the test names it: kind, recipient, status, source, outcome.
func summary(c Change) string {
	return strings.Join([]string{c.Kind, c.Recipient, c.Status, c.Source, c.Outcome}, " ")
}

// TestChangesFeed brings changes through the real paths (a refusal of a
// sync, citizens' changes pulled from the sandbox) and reads the feed in
// pages: every change once, in order, each with its own id; resumed from a
// cursor it gives exactly what came after; a change whose transaction ends
// late comes after those served meanwhile, so that none is skipped.
func TestChangesFeed(t *testing.T) {
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
	if _, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: "600001", IYSCode: "700001", FirstSyncAt: time.Now(),
		Channels: []consent.Type{consent.TypeMesaj}}); err != nil {
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
	h, err := New(st, []string{"crm:" + hashOf(tokCRM), "web:" + hashOf(tokWeb) + ":600002"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	phone := func(n int) string { return fmt.Sprintf("9053300000%02d", n) }
	post := func(n int, status string, date time.Time) {
		t.Helper()
		body, _ := json.Marshal([]map[string]string{{"recipient": phone(n), "type": "MESAJ", "status": status,
			"platform": "web", "consentDate": date.Format(time.RFC3339)}})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/connectors/600001/consents", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tokCRM)
		req.Header.Set("Content-Type", "application/json")
		if a := do(t, req); a.status != http.StatusOK || !strings.Contains(string(a.body), `"accepted":1`) {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
	}
	citizen := func(n int, status string) {
		sb.Admin.Citizen(sandboxtest.Change{IYSCode: "700001", BrandCode: "600001", Recipient: "+" + phone(n),
			RecipientType: "BIREYSEL", Type: "MESAJ", Status: status, Source: "IYS_MOBIL"})
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)

	// Nothing yet: an empty first page, its cursor still the start.
	if p := feedPage(t, srv.URL, "600001", tokCRM, "", 10); len(p.Changes) != 0 || p.Next != "" || p.BrandCode != "600001" {
		t.Fatalf("first page: %+v", p)
	}
	// Synced ONAYs are no change of İYS's: they stay out of the feed. A
	// too old one is refused; then citizens change two records through İYS.
	for n := 1; n <= 3; n++ {
		post(n, "ONAY", base)
	}
	post(4, "ONAY", base.AddDate(0, 0, -20))
	run()
	citizen(1, "RET")
	citizen(5, "ONAY")
	run()
	first, cursor := feedFrom(t, srv.URL, "", 1, 3)
	want := []string{"refused +" + phone(4) + " ONAY HS_WEB too_old", "from_iys +" + phone(1) + " RET IYS_MOBIL from_iys",
		"from_iys +" + phone(5) + " ONAY IYS_MOBIL from_iys"}
	for i, c := range first {
		if summary(c) != want[i] {
			t.Errorf("change %d: %s, want %s", i, summary(c), want[i])
		}
		if (c.Kind == "refused") != (c.IYSCode != "" && c.IYSMessage != "") || c.RecipientType != "BIREYSEL" || c.Type != "MESAJ" {
			t.Errorf("change %d: %+v", i, c)
		}
		if _, err := time.Parse(time.RFC3339, c.ConsentDate); err != nil {
			t.Errorf("change %d: consentDate %q", i, c.ConsentDate)
		}
		if _, err := time.Parse(time.RFC3339, c.At); err != nil {
			t.Errorf("change %d: at %q", i, c.At)
		}
	}
	// Read again from the start in one page: the same changes, the same ids.
	if again, next := feedFrom(t, srv.URL, "", 100, 3); fmt.Sprint(again) != fmt.Sprint(first) || next != cursor {
		t.Errorf("read again: %+v (next %q), want %+v (next %q)", again, next, first, cursor)
	}

	// Resumed from the cursor: only what came after, once.
	citizen(2, "RET")
	run()
	more, cursor := feedFrom(t, srv.URL, cursor, 10, 1)
	if len(more) != 1 || summary(more[0]) != "from_iys +"+phone(2)+" RET IYS_MOBIL from_iys" {
		t.Fatalf("resumed: %+v", more)
	}

	// A change whose transaction is still open does not hold back one
	// committed after it; it comes once committed, after the cursor.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // committed below
	if _, err := tx.Exec(`UPDATE consents SET state = 'rejected', outcome = 'invalid', iys_code = 'H999', iys_message = 'test'
		WHERE recipient = $1`, "+"+phone(3)); err != nil {
		t.Fatal(err)
	}
	citizen(6, "RET")
	run()
	later, cursor := feedFrom(t, srv.URL, cursor, 10, 1)
	if len(later) != 1 || summary(later[0]) != "from_iys +"+phone(6)+" RET IYS_MOBIL from_iys" {
		t.Fatalf("while a change is open: %+v", later)
	}
	if p := feedPage(t, srv.URL, "600001", tokCRM, cursor, 10); len(p.Changes) != 0 {
		t.Fatalf("an open transaction's change is served: %+v", p.Changes)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	last, end := feedFrom(t, srv.URL, cursor, 10, 1)
	if len(last) != 1 || summary(last[0]) != "refused +"+phone(3)+" ONAY HS_WEB invalid" || last[0].IYSCode != "H999" {
		t.Fatalf("after the commit: %+v", last)
	}
	// From the start, every change once, in the order they were served.
	all, _ := feedFrom(t, srv.URL, "", 2, 6)
	if got, want := fmt.Sprint(all), fmt.Sprint(append(append(append(first, more...), later...), last...)); got != want {
		t.Errorf("from the start: %s, want %s", got, want)
	}
	seen := map[int64]bool{}
	for _, c := range all {
		if seen[c.ID] {
			t.Errorf("id %d twice", c.ID)
		}
		seen[c.ID] = true
	}
	if p := feedPage(t, srv.URL, "600001", tokCRM, end, 10); len(p.Changes) != 0 {
		t.Errorf("past the end: %+v", p.Changes)
	}

	// Refusals: a token for another brand, bad parameters.
	get := func(tok, query string) answer {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/connectors/600001/changes?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(t, req)
	}
	wantError(t, get(tokWeb, ""), http.StatusForbidden, "forbidden")
	for _, c := range []struct{ query, field string }{
		{"after=nonsense", "after"}, {"after=cHg", "after"} /* px */, {"after=cDA", "after"} /* p0 */, {"limit=0", "limit"},
		{"limit=1001", "limit"}, {"limit=ten", "limit"}, {"limit=1&limit=2", "limit"}, {"since=1", "since"},
	} {
		wantFieldError(t, get(tokCRM, c.query), http.StatusBadRequest, "bad_request", c.field, "")
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/connectors/600001/changes", nil)
	req.Header.Set("Authorization", "Bearer "+tokCRM)
	wantError(t, do(t, req), http.StatusMethodNotAllowed, "method_not_allowed")
}
