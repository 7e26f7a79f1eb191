package main

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// sourceQuery is a query over a small users table, as in the README.
const sourceQuery = `SELECT id::text AS external_id, email, phone,
	CASE sms_optin WHEN true THEN 'ONAY' WHEN false THEN 'RET' END AS sms_status, sms_optin_at AS sms_at,
	NULL AS call_status, NULL::timestamptz AS call_at,
	CASE email_optin WHEN true THEN 'ONAY' WHEN false THEN 'RET' END AS email_status, email_optin_at AS email_at
FROM users`

// install --source-query stores the query, follows install's idempotency,
// and --run-now reads the source before the push: its users reach İYS, and
// a later run sends only the user whose permission changed.
func TestSourceQueryInstallAndRun(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	brandURL := pgtest.NewDB(t)
	brand, err := sql.Open("postgres", brandURL)
	if err != nil {
		t.Fatal(err)
	}
	defer brand.Close()
	if _, err := brand.Exec(`CREATE TABLE users (id int PRIMARY KEY, email text, phone text,
		sms_optin boolean, sms_optin_at timestamptz, email_optin boolean, email_optin_at timestamptz);
		INSERT INTO users VALUES
		  (1, 'a@example.com', '905331234561', true, now() - interval '1 hour', true, now() - interval '2 hours'),
		  (2, 'b@example.com', '905331234562', true, now() - interval '1 hour', NULL, NULL),
		  (3, NULL,            '905331234563', true, now() - interval '1 hour', NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	install := []string{"install", "--brand-code", "600001", "--iys-code", "700001", "--channels", "MESAJ,EPOSTA",
		"--skip-verify", "--source-query", sourceQuery}
	if r := runCmd(t, environ, install...); r.code != 0 {
		t.Fatalf("install: exit %d %s", r.code, r.stderr)
	}
	if r := runCmd(t, environ, install...); r.code != 0 || !strings.Contains(r.stdout, "already installed") {
		t.Fatalf("repeated install: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	other := append(append([]string{}, install[:len(install)-1]...), "SELECT * FROM customers")
	if r := runCmd(t, environ, other...); r.code == 0 || !strings.Contains(r.stderr, "source query") {
		t.Fatalf("install with another query: exit %d %s", r.code, r.stderr)
	}

	environ["IYS_SOURCE_DATABASE_URL"] = brandURL
	lastRun := func() (sent, accepted int) {
		t.Helper()
		r := runCmd(t, environ, "--run-now", "--brand-code", "600001")
		if r.code != 0 {
			t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		var st statusJSON
		r = runCmd(t, environ, "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Connectors) != 1 || st.Connectors[0].LastRun == nil {
			t.Fatalf("status --json: %v %s", err, r.stdout)
		}
		return st.Connectors[0].LastRun.Sent, st.Connectors[0].LastRun.Accepted
	}
	if sent, acc := lastRun(); sent != 4 || acc != 4 {
		t.Errorf("first run sent %d accepted %d, want 4 and 4 (3 MESAJ, 1 EPOSTA)", sent, acc)
	}
	if sent, _ := lastRun(); sent != 0 {
		t.Errorf("a run with the source unchanged sent %d", sent)
	}
	if _, err := brand.Exec(`UPDATE users SET sms_optin = false, sms_optin_at = now() - interval '1 minute' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	if sent, acc := lastRun(); sent != 1 || acc != 1 {
		t.Errorf("after one change the run sent %d accepted %d, want 1 and 1", sent, acc)
	}
}
