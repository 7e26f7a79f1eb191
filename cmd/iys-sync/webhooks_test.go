package main

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
