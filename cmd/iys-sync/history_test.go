package main

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/history"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// A recipient imported from a file, sent to İYS, opted out by the citizen
// at İYS and pulled, then imported again with an older line: history tells
// every step with its file and line, request and transaction ids, and
// İYS's source; verify holds, and names the record once an event is edited.
func TestHistoryTellsEveryStep(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	const phone = "+905331234562"
	first := writeFile(t, "first.txt", "905331234569; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+
		"\n905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", first); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCmd(t, environ, "--run-now", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sandboxAdmin(t, environ).Citizen(sandboxRecord(phone, "RET", "IYS_MOBIL"))
	if r := runCmd(t, environ, "pull", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	older := writeFile(t, "older.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-2*time.Hour))+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", older); r.code != 0 {
		t.Fatal(r.stderr)
	}

	r := runCmd(t, environ, "history", "--brand-code", "600001", "--recipient", "905331234562", "--json")
	var story history.Story
	if err := json.Unmarshal([]byte(r.stdout), &story); err != nil || r.code != 0 {
		t.Fatalf("history --json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if story.Recipient != phone {
		t.Fatalf("recipient = %q", story.Recipient)
	}
	var kinds []string
	for _, e := range story.Events {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); got != "file sent verdict iys file" {
		t.Fatalf("events = %s, want file sent verdict iys file\n%s", got, r.stdout)
	}
	ev := story.Events
	if ev[0].Origin != "file:"+filepath.Base(first)+":2" || ev[0].Status != "ONAY" || ev[0].ImportID == 0 || ev[0].Type != "MESAJ" {
		t.Errorf("imported: %+v", ev[0])
	}
	if ev[1].RequestID == "" || ev[1].SubrequestID == "" {
		t.Errorf("sent: %+v, want the request and subrequest ids", ev[1])
	}
	if ev[2].Outcome != "accepted" || ev[2].TransactionID == "" || ev[2].RequestID != ev[1].RequestID || ev[2].State != "synced" {
		t.Errorf("verdict: %+v", ev[2])
	}
	if ev[3].Source != "IYS_MOBIL" || ev[3].Status != "RET" || ev[3].Origin != "iys:IYS_MOBIL" || ev[3].TransactionID == "" ||
		ev[3].CreationDate == "" || ev[3].Version != 2 {
		t.Errorf("pulled: %+v", ev[3])
	}
	if ev[4].Origin != "file:"+filepath.Base(older)+":1" || ev[4].Outcome != "superseded" || ev[4].Status != "ONAY" || ev[4].Version != 2 {
		t.Errorf("older line: %+v", ev[4])
	}
	// In words, for people.

	r = runCmd(t, environ, "history", "--brand-code", "600001", "--recipient", phone, "--type", "MESAJ")
	for _, want := range []string{"imported from file first.txt, line 2", "sent to İYS in request " + ev[1].RequestID,
		"İYS accepted it (accepted, transaction " + ev[2].TransactionID, "pulled from İYS's changes: RET given",
		"source IYS_MOBIL", "not applied: the record holds a newer consent"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("history lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runCmd(t, environ, "history", "--brand-code", "600001", "--recipient", phone, "--type", "EPOSTA"); r.code != 0 ||
		!strings.Contains(r.stdout, "No events") {
		t.Errorf("history of another type: exit %d %s", r.code, r.stdout)
	}

	if r := runCmd(t, environ, "verify", "--brand-code", "600001"); r.code != 0 || !strings.Contains(r.stdout, "every history holds") {
		t.Fatalf("verify: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Someone rewrites the first line's consent behind our back.
	if _, err := db.Exec(`BEGIN; SET LOCAL iys_sync.prune = 'on';
		UPDATE consent_events SET status = 'RET' WHERE seq = 1 AND consent_id = (SELECT id FROM consents WHERE recipient = '` + phone + `');
		COMMIT`); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, environ, "verify", "--brand-code", "600001", "--json")
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != exitRejected {
		t.Fatalf("verify after an edit: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	if len(v.Broken) != 1 || v.Broken[0].Type != "MESAJ" || !strings.Contains(v.Broken[0].Problem, "event 1 does not match") ||
		strings.Contains(r.stdout, "1234562") || v.Records != 2 {
		t.Fatalf("verify names %+v, want the one record, masked", v)
	}
}

// prune and forget through the command line: retention keeps a valid
// consent and a recent RET, and lets a RET past it go.
func TestPruneAndForget(t *testing.T) {
	t.Parallel()
	environ := map[string]string{"IYS_DATABASE_URL": storedb.NewDB(t)}
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--skip-verify"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+
		"\n905331234563; SMS; RET; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCmd(t, environ, "prune", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "would delete 0 events of 0 records") ||
		!strings.Contains(r.stdout, "1095 days") {
		t.Fatalf("prune --dry-run: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A day's retention, two days on: the RET's history goes, the ONAY's stays.
	environ["IYS_RETENTION"] = "1d"
	later := func() time.Time { return time.Now().Add(50 * time.Hour) }
	if r := runCmdAt(t, later, environ, "prune"); r.code != 0 || !strings.Contains(r.stdout, "deleted 1 event of 1 record") {
		t.Fatalf("prune: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, environ, "verify", "--brand-code", "600001"); r.code != 0 {
		t.Fatalf("verify after prune: exit %d %s", r.code, r.stdout)
	}
	r := runCmdAt(t, later, environ, "forget", "--brand-code", "600001", "--recipient", "905331234562")
	if r.code != exitRejected || !strings.Contains(r.stderr, "valid (ONAY)") {
		t.Fatalf("forget a valid consent: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, environ, "forget", "--brand-code", "600001", "--recipient", "905331234563"); r.code != exitRejected ||
		!strings.Contains(r.stderr, "keeps this recipient's records until") {
		t.Fatalf("forget a RET within retention: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = runCmdAt(t, later, environ, "forget", "--brand-code", "600001", "--recipient", "905331234563")
	if r.code != 0 || !strings.Contains(r.stdout, "erased 1 record") || strings.Contains(r.stdout, "1234563") ||
		!strings.Contains(r.stdout, "0 entries of the changes feed, 0 quarantined feed entries") {
		t.Fatalf("forget a RET past retention: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, environ, "history", "--brand-code", "600001", "--recipient", "905331234563"); !strings.Contains(r.stdout, "No events") {
		t.Fatalf("history after forget: %s", r.stdout)
	}
}
