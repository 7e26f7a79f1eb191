package main

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/redact"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// brandDB makes the brand's database: a users table of three users and a
// victim table that no source query may drop.
func brandDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	brandURL := pgtest.NewDB(t)
	brand, err := sql.Open("postgres", brandURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brand.Close() })
	if _, err := brand.Exec(`CREATE TABLE users (id int PRIMARY KEY, email text, phone text,
		sms_optin boolean, sms_optin_at timestamptz, email_optin boolean, email_optin_at timestamptz);
		INSERT INTO users VALUES
		  (1, 'a@example.com', '+905331234561', true, now() - interval '1 hour', true, now() - interval '2 hours'),
		  (2, 'b@example.com', '905331234562', true, now() - interval '1 hour', NULL, NULL),
		  (3, NULL,            '5331234563', true, now() - interval '1 hour', NULL, NULL);
		CREATE TABLE victim (x int)`); err != nil {
		t.Fatal(err)
	}
	return brandURL, brand
}

func victimAlive(t *testing.T, brand *sql.DB) bool {
	t.Helper()
	var n int
	if err := brand.QueryRow("SELECT count(*) FROM pg_tables WHERE tablename = 'victim'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// stackedSourceQuery leaves its subquery, commits the read-only transaction,
// turns read-only off and drops the victim, in the shape of the count
// statement of the first user-table source.
const stackedSourceQuery = sourceQuery + `) AS q0; COMMIT; SET default_transaction_read_only = off; COMMIT; DROP TABLE victim;
	SELECT count(*) FROM (SELECT NULL::text AS external_id`

// install refuses the stacked query, with or without the brand's database
// set; a connector that holds it all the same (stored by an earlier
// version) reads nothing at its run, and the victim lives.
func TestStackedSourceQueryRefused(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	brandURL, brand := brandDB(t)
	install := []string{"install", "--brand-code", "600001", "--iys-code", "700001", "--channels", "MESAJ,EPOSTA",
		"--skip-verify", "--source-query", stackedSourceQuery}
	for _, withURL := range []bool{false, true} {
		if withURL {
			environ["IYS_SOURCE_DATABASE_URL"] = brandURL
		}
		r := runCmd(t, environ, install...)
		if r.code != exitUsage || !strings.Contains(r.stderr, `holds a ";"`) {
			t.Fatalf("install (source URL set: %v): exit %d, %s", withURL, r.code, r.stderr)
		}
	}
	if !victimAlive(t, brand) {
		t.Fatal("install dropped the victim table")
	}
	// A connector holding it: installed with a good query, then changed as
	// the first version's install would have stored it.
	install[len(install)-1] = sourceQuery
	if r := runCmd(t, environ, install...); r.code != 0 {
		t.Fatalf("install: exit %d %s", r.code, r.stderr)
	}
	ours, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	if _, err := ours.Exec("UPDATE connectors SET source_query = $1", stackedSourceQuery); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, environ, "--run-now", "--brand-code", "600001")
	if r.code != exitRejected || !strings.Contains(r.stdout, `holds a ";"`) {
		t.Errorf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !victimAlive(t, brand) {
		t.Fatal("a run dropped the victim table")
	}
}

// install checks the query's columns and first page on the brand's database
// when it is set, and says so when it is not.
func TestInstallChecksSourceQuery(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	brandURL, _ := brandDB(t)
	install := []string{"install", "--brand-code", "600001", "--iys-code", "700001", "--channels", "MESAJ,EPOSTA",
		"--skip-verify", "--source-query"}
	r := runCmd(t, environ, append(install, sourceQuery)...)
	if r.code != 0 || !strings.Contains(r.stdout, "IYS_SOURCE_DATABASE_URL is not set") {
		t.Fatalf("install without the brand's database: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	u, _ := url.Parse(brandURL)
	u.User = url.UserPassword(u.User.Username(), "Install-Pw-123")
	environ["IYS_SOURCE_DATABASE_URL"] = u.String()
	// The cluster trusts local connections: the password is carried, not checked.
	r = runCmd(t, environ, append(install, sourceQuery)...)
	if r.code != 0 || !strings.Contains(r.stdout, "columns are as expected") || !strings.Contains(r.stdout, "3 users, 4 valid consents, 0 values rejected") {
		t.Fatalf("install with the brand's database: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "Install-Pw-123") || !strings.Contains(r.stdout, ":***@") {
		t.Errorf("the brand's database is not shown redacted: %s", r.stdout)
	}
	bad := strings.Replace(sourceQuery, "id::text AS external_id", "id AS external_id", 1)
	r = runCmd(t, environ, append(install, bad)...)
	if r.code != exitFatal || !strings.Contains(r.stderr, "external_id is integer: want text") {
		t.Fatalf("a query with a wrong column type: exit %d %s", r.code, r.stderr)
	}
}

// A password that breaks the source URL (%zz, a space, a bad port) is
// refused before any work, the variable named and nothing of the password
// shown. And a password that the brand's database echoes in an error
// reaches no log line, no stdout, no runs.error and no status --json.
func TestSourceURLNeverLeaks(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	brandURL, _ := brandDB(t)
	const pw = "Src-Pw-77x"
	u, _ := url.Parse(brandURL)
	host := u.Host
	for _, bad := range []string{
		"postgres://app:" + pw + "%zz@" + host + "/x",
		"postgres://app:" + pw + " z@" + host + "/x",
		"postgres://app:" + pw + "@" + u.Hostname() + ":54x32/x",
	} {
		env := map[string]string{}
		for k, v := range environ {
			env[k] = v
		}
		env["IYS_SOURCE_DATABASE_URL"] = bad
		for _, args := range [][]string{{"--run-now"}, {"status", "--json"}, {"install", "--brand-code", "600001",
			"--iys-code", "700001", "--skip-verify", "--source-query", sourceQuery}} {
			r := runCmd(t, env, args...)
			if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_SOURCE_DATABASE_URL") {
				t.Errorf("%q %v: exit %d %s", bad, args, r.code, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, pw) || strings.Contains(r.stdout+r.stderr, "zz") {
				t.Errorf("%q %v: the password shows:\n%s\n%s", bad, args, r.stdout, r.stderr)
			}
		}
	}

	// A query whose error quotes the password, read through a URL carrying it.
	echoing := strings.Replace(sourceQuery, "FROM users", "FROM users WHERE id > '"+pw+"'::int", 1)
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--channels", "MESAJ,EPOSTA",
		"--skip-verify", "--source-query", echoing); r.code != 0 {
		t.Fatalf("install: exit %d %s", r.code, r.stderr)
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	environ["IYS_SOURCE_DATABASE_URL"] = u.String()
	run := runCmd(t, environ, "--run-now", "--brand-code", "600001")
	if run.code != exitRejected || !strings.Contains(run.stdout, "invalid input syntax") {
		t.Fatalf("--run-now: exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	delete(environ, "IYS_SOURCE_DATABASE_URL")
	status := runCmd(t, environ, "status", "--json")
	if !strings.Contains(status.stdout, "invalid input syntax") {
		t.Fatalf("status --json lacks the run's error: %s", status.stdout)
	}
	ours, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	var stored string
	if err := ours.QueryRow("SELECT string_agg(coalesce(error, ''), ' | ') FROM runs").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"stdout": run.stdout, "logs": run.stderr, "status --json": status.stdout, "runs.error": stored} {
		if strings.Contains(text, pw) || !strings.Contains(text, "***") {
			t.Errorf("%s shows the password, or nothing was masked:\n%s", what, text)
		}
	}
}

// Secret settings given as flags are refused as usage errors naming the
// variable, their values shown nowhere; a plain token in IYS_INTAKE_TOKENS
// is refused without being echoed.
func TestSecretFlagsRefusedCLI(t *testing.T) {
	t.Parallel()
	const secret = "Flag-S3cret-9"
	environ := map[string]string{"IYS_DATABASE_URL": storedb.NewDB(t)}
	for _, args := range [][]string{
		{"status", "--database-url", "postgres://app:" + secret + "@db/iys"},
		{"--run-now", "--source-database-url=postgres://app:" + secret + "@crm/crm"},
		{"install", "--brand-code", "600001", "--iys-code", "700001", "--password", secret},
		{"import", "--dry-run", "--channel", "sms", "--intake-tokens", "crm:" + secret, "x.csv"},
	} {
		r := runCmd(t, environ, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "IYS_") || !strings.Contains(r.stderr, "environment") {
			t.Errorf("%v: exit %d %s", args, r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("%v: the secret shows: %s %s", args, r.stdout, r.stderr)
		}
	}
	const token = "PlainTokenPasted-42"
	environ["IYS_INTAKE_TOKENS"] = "crm:" + token
	r := runCmd(t, environ, "status")
	if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_INTAKE_TOKENS") || strings.Contains(r.stdout+r.stderr, token) {
		t.Errorf("a plain token: exit %d %s", r.code, r.stderr)
	}
}

// YAML values are the strings written: password: 0123 logs in to İYS as
// "0123", where YAML 1.1 would have sent 83.
func TestConfigFileValuesAsWritten(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{Password: "0123"})
	delete(environ, "IYS_PASSWORD")
	cfgFile := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfgFile, []byte("password: 0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, environ, "install", "--config", cfgFile, "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 ||
		!strings.Contains(r.stdout, "checked with İYS") {
		t.Fatalf("exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// The logger and the exit message scrub the process's secrets, in whatever
// field or form they come: a zap error, a URL, JSON-escaped.
func TestLogsAndExitMessageScrubbed(t *testing.T) {
	const secret = `Log"S3cret\ç`
	redact.Register(secret)
	var logs, exit bytes.Buffer
	log := newLogger(config.Default(), &logs)
	log.Error("failed", zap.Error(errors.New("login "+secret)), zap.String("dsn", "postgres://app:other-pw@db/x"),
		zap.Any("body", map[string]string{"password": secret}))
	_ = log.Sync()
	exitCode(fmt.Errorf("connect: %s", secret), &exit)
	for what, text := range map[string]string{"log": logs.String(), "exit message": exit.String()} {
		if strings.Contains(text, "S3cret") || strings.Contains(text, "other-pw") || !strings.Contains(text, "***") {
			t.Errorf("%s: %s", what, text)
		}
	}
}
