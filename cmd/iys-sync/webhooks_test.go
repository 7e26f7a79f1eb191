package main

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/webhook"
)

// serve with IYS_WEBHOOK_URL delivers the connector's changes to the
// receiver, signed with IYS_WEBHOOK_SECRET, which no log line shows (at
// debug); without the secret serve refuses to start.
func TestServeDeliversWebhooks(t *testing.T) {
	t.Parallel()
	const secret = "Wh00kS3cret-serve"
	environ := sandboxEnv(t, sandbox.Options{})
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	at := uploadTime(time.Now().Add(-time.Hour))
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+at+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// İYS's refusal, as a run records it: a change of the feed.
	if _, err := db.Exec(`UPDATE consents SET state = 'rejected', outcome = 'invalid', iys_code = 'H174'`); err != nil {
		t.Fatal(err)
	}

	got := make(chan webhook.Delivery, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		var d webhook.Delivery
		if err := json.Unmarshal(body, &d); err != nil {
			t.Errorf("%v: %s", err, body)
		}
		got <- d
	}))
	defer recv.Close()

	environ["IYS_WEBHOOK_URL"] = recv.URL + "/hook"
	r := runCmd(t, environ, "serve")
	if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_WEBHOOK_SECRET") {
		t.Fatalf("serve without the secret: exit %d, %s", r.code, r.stderr)
	}
	environ["IYS_WEBHOOK_SECRET"] = secret
	environ["IYS_LOG_LEVEL"] = "debug"
	logs, stop := startServe(t, environ)
	select {
	case d := <-got:
		if d.BrandCode != "600001" || len(d.Changes) != 1 || d.Changes[0].Kind != "refused" || d.Changes[0].IYSCode != "H174" {
			t.Errorf("delivery %+v", d)
		}
	case <-time.After(time.Minute):
		t.Fatalf("no delivery:\n%s", logs.String())
	}
	// The cursor moves once the receiver's 200 is read.
	var pos int
	for deadline := time.Now().Add(time.Minute); pos != 1; time.Sleep(20 * time.Millisecond) {
		if err := db.QueryRow(`SELECT delivered_pos FROM webhook_cursors`).Scan(&pos); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor at %d, want 1", pos)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("the secret shows in serve's log:\n%s", logs.String())
	}
}

// pull delivers the changes it brought before it ends; a receiver that
// refuses them leaves pull's exit status alone and the cursor where it was.
func TestPullDeliversWebhooks(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	sandboxAdmin(t, environ).Citizen(sandboxRecord("+905330000002", "RET", "IYS_WEB"))
	var mu sync.Mutex
	var got []webhook.Delivery
	status := http.StatusServiceUnavailable
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var d webhook.Delivery
		if err := json.Unmarshal(body, &d); err != nil {
			t.Errorf("%v: %s", err, body)
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d)
		w.WriteHeader(status)
	}))
	defer recv.Close()
	environ["IYS_WEBHOOK_URL"], environ["IYS_WEBHOOK_SECRET"] = recv.URL, "Wh00kS3cret-pull"
	if r := runCmd(t, environ, "pull", "--brand-code", "600001"); r.code != 0 || !strings.Contains(r.stderr, "HTTP 503") {
		t.Fatalf("pull with the receiver down: exit %d, %s", r.code, r.stderr)
	}
	// status shows the failure.
	if r := runCmd(t, environ, "status"); !strings.Contains(r.stdout, "600001: webhooks failing: 1 failed try, the last: the receiver answered HTTP 503; 1 change waiting") {
		t.Fatalf("status: %s %s", r.stdout, r.stderr)
	}
	wantWebhook := func(undelivered int64, attempts int, lastError string) {
		t.Helper()
		var out statusJSON
		r := runCmd(t, environ, "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Connectors) != 1 || out.Connectors[0].Webhook == nil {
			t.Fatalf("status --json: %v %s %s", err, r.stdout, r.stderr)
		}
		w := out.Connectors[0].Webhook
		if w.Undelivered != undelivered || w.Attempts != attempts || !strings.Contains(w.LastError, lastError) ||
			(undelivered > 0) != (w.OldestUndeliveredAt != "") || (attempts == 0) != (w.DeliveredAt != "") || w.NextAttemptAt == "" {
			t.Fatalf("status --json's webhook %+v, want %d undelivered, %d attempts, error %q", w, undelivered, attempts, lastError)
		}
	}
	wantWebhook(1, 1, "HTTP 503")
	status = http.StatusOK
	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Due again at once: pull tries before it ends, whatever serve's pause.
	if _, err := db.Exec(`UPDATE webhook_cursors SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, environ, "pull", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("pull: exit %d, %s", r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || len(got[1].Changes) != 1 || got[1].Changes[0].Recipient != "+905330000002" || got[1].Changes[0].Source != "IYS_WEB" {
		t.Fatalf("deliveries %+v, want the pulled change twice (503, then 200)", got)
	}
	var pos int
	if err := db.QueryRow(`SELECT delivered_pos FROM webhook_cursors`).Scan(&pos); err != nil || pos != 1 {
		t.Fatalf("cursor at %d (%v), want 1", pos, err)
	}
	wantWebhook(0, 0, "")
}
