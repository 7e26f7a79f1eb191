package intake

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/history"
)

// GET .../consents/{recipient}/history tells what the intake stored of a
// recipient, each item with its token, request id and index, and an older
// item that lost; it asks for a token that may write the connector.
func TestHistoryEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	item := func(status, date string) map[string]string {
		return map[string]string{"recipient": "905331112233", "type": "MESAJ", "status": status,
			"consentDate": date, "platform": "web"}
	}
	post := func(items ...map[string]string) string {
		body, _ := json.Marshal(items)
		a := e.post(t, "B", tokCRM, "application/json", body)
		if a.status != http.StatusOK || a.header.Get("X-Request-Id") == "" {
			t.Fatalf("post: %d %s, X-Request-Id %q", a.status, a.body, a.header.Get("X-Request-Id"))
		}
		return a.header.Get("X-Request-Id")
	}
	first := post(map[string]string{"recipient": "905331112299", "type": "MESAJ", "status": "ONAY",
		"consentDate": "2025-05-20 10:00:00", "platform": "web"}, item("ONAY", "2025-05-20 10:00:00"))
	second := post(item("RET", "2025-05-19 10:00:00"))
	if first == second {
		t.Fatalf("two requests, one id %q", first)
	}

	get := func(tok, recipient, query string) answer {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/connectors/B/consents/"+recipient+"/history"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return do(t, req)
	}
	a := get(tokCRM, "+905331112233", "?type=MESAJ")
	var story history.Story
	if err := json.Unmarshal(a.body, &story); err != nil || a.status != http.StatusOK {
		t.Fatalf("history: %d %v %s", a.status, err, a.body)
	}
	if story.Recipient != "+905331112233" || len(story.Events) != 2 {
		t.Fatalf("history: %s", a.body)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q: personal data must not be cached", cc)
	}
	got, old := story.Events[0], story.Events[1]
	if got.Kind != "api" || got.Origin != "api:crm:1" || got.RequestID != first || got.Status != "ONAY" || got.Outcome != "" {
		t.Errorf("stored item: %+v", got)
	}
	if old.Origin != "api:crm:0" || old.RequestID != second || old.Status != "RET" || old.Outcome != "superseded" ||
		!strings.Contains(old.Description, "not applied") {
		t.Errorf("older item: %+v", old)
	}
	// The same without a type, with the number as a client may write it.
	if a := get(tokCRM, "905331112233", ""); a.status != http.StatusOK || !strings.Contains(string(a.body), first) {
		t.Errorf("without type: %d %s", a.status, a.body)
	}
	for _, c := range []struct {
		tok, recipient, query string
		status                int
	}{
		{"", "905331112233", "", http.StatusUnauthorized},
		{tokWeb, "905331112233", "", http.StatusForbidden}, // connector C only
		{tokCRM, "not-a-number", "", http.StatusBadRequest},
		{tokCRM, "905331112233", "?type=FAX", http.StatusBadRequest},
	} {
		if a := get(c.tok, c.recipient, c.query); a.status != c.status || strings.Contains(string(a.body), "1112233") {
			t.Errorf("%+v: %d %s", c, a.status, a.body)
		}
	}
}
