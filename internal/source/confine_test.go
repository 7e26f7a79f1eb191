package source

import (
	"context"
	"database/sql"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stackedQuery is a source query that leaves its subquery, commits the read
// transaction, turns read-only off and drops a table of the brand's.
const stackedQuery = `SELECT id::text AS external_id, email, phone, NULL AS sms_status, NULL::timestamptz AS sms_at,
	NULL AS call_status, NULL::timestamptz AS call_at, NULL AS email_status, NULL::timestamptz AS email_at FROM users) AS q0;
	COMMIT; SET default_transaction_read_only = off; COMMIT; DROP TABLE victim; SELECT count(*) FROM (SELECT NULL::text AS external_id`

func TestCheckQuery(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		usersQuery,
		"WITH u AS (SELECT * FROM users) SELECT * FROM u",
		"(SELECT 1 AS x) UNION (SELECT 2)",
		"select ';' AS a, 'it''s; fine' AS b, E'\\'; x' AS c, $$ ; $$ AS d, $tag$ ;) $tag$ AS e, \"we;ird\"\"\" AS f -- ; comment\nFROM t",
		"SELECT /* a ; /* nested ; */ still ; */ 1 AS x",
		"SELECT a$b FROM t", // $ inside an identifier
	} {
		if err := CheckQuery(q); err != nil {
			t.Errorf("CheckQuery(%q) = %v, want nil", q, err)
		}
	}
	for q, want := range map[string]string{
		stackedQuery:                           `";"`,
		"SELECT 1;":                            `";"`,
		"SELECT 1 AS x; DELETE FROM users":     `";"`,
		"SELECT '; x' AS a; SELECT 2":          `";"`,
		"":                                     "empty",
		"  -- only a comment":                  "SELECT or WITH",
		"DELETE FROM users RETURNING id":       "SELECT or WITH",
		"VALUES (1)":                           "SELECT or WITH",
		"SELECT 1 FROM t) AS q0 UNION (SELECT": "closes a parenthesis",
		"SELECT (1":                            "open",
		"SELECT 'unterminated":                 "does not end",
		"SELECT E'a\\' ; ":                     "does not end",
		"SELECT $x$ ; ":                        "does not end",
		"SELECT /* ; ":                         "does not end",
		"SELECT * FROM users WHERE id > $1":    "parameter $1",
	} {
		err := CheckQuery(q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckQuery(%q) = %v, want an error with %q", q, err, want)
		}
	}
}

// The stacked query, stored by an install that did not check it (or slipped
// past the check), is refused at a run; and even without the check, the
// extended protocol the reader speaks runs one statement only. The victim
// table survives both.
func TestStackedQueryDropsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	mustExec(t, f.brand, "CREATE TABLE victim (x int)")
	ctx := context.Background()
	f.conn.SourceQuery = stackedQuery
	if _, err := f.r.Read(ctx, f.conn); err == nil || !strings.Contains(err.Error(), `";"`) {
		t.Errorf("Read = %v, want the query refused", err)
	}
	// Without CheckQuery, a statement without arguments, which lib/pq would
	// send as a simple query (several statements run): query prepares it.
	err := f.r.db.readTx(ctx, func(tx *sql.Tx) error {
		rows, done, err := query(ctx, tx, "SELECT count(*) FROM (\n"+stackedQuery+"\n) AS q WHERE q.external_id IS NULL")
		if err == nil {
			for rows.Next() {
			}
			done()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "multiple commands") {
		t.Errorf("a stacked statement ran: %v", err)
	}
	if n := count(t, f.brand, "SELECT count(*) FROM pg_tables WHERE tablename = 'victim'"); n != 1 {
		t.Fatal("the victim table was dropped")
	}
}

// Every session of the brand's database is read-only, bounded and kept
// from idling in a transaction, from its first statement; a query that
// changes a setting with set_config() changes it for its own transaction
// only; and the DSN's own options cannot turn read-only off.
func TestSessionConfined(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	ctx := context.Background()
	db, err := Open(f.brandURL+"&options=-c%20default_transaction_read_only%3Doff", 7*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.db.SetMaxOpenConns(1) // one session: what a query leaves behind, the next one meets
	show := func(name string) string {
		var v string
		if err := db.db.QueryRowContext(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if ro, st, idle := show("default_transaction_read_only"), show("statement_timeout"), show("idle_in_transaction_session_timeout"); ro != "on" || st != "7s" || idle != "1min" {
		t.Errorf("read only %s, statement_timeout %s, idle_in_transaction_session_timeout %s; want on, 7s, 1min", ro, st, idle)
	}
	if _, err := db.db.ExecContext(ctx, "CREATE TABLE t (x int)"); err == nil {
		t.Error("a session of the brand's database wrote")
	}
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		rows, done, err := query(ctx, tx, "SELECT set_config('statement_timeout', '0', false), set_config('default_transaction_read_only', 'off', false) WHERE $1 = ''", "")
		if err == nil {
			for rows.Next() {
			}
			done()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ro, st := show("default_transaction_read_only"), show("statement_timeout"); ro != "on" || st != "7s" {
		t.Errorf("after a query's set_config: read only %s, statement_timeout %s; want on, 7s", ro, st)
	}
}

// ourOpenTransactions counts the sessions of our database, other than the
// caller's, inside a transaction.
func ourOpenTransactions(t *testing.T, ours *sql.DB) int {
	return count(t, ours, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
		  AND xact_start IS NOT NULL`)
}

// A source query that sleeps ends with the brand database's statement
// timeout, within the configured bound; and all the while our database
// holds no transaction open for it.
func TestSlowQueryEndsAtStatementTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	const timeout = 2 * time.Second
	db, err := Open(f.brandURL, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f.r.db = db
	f.conn.SourceQuery = strings.Replace(usersQuery, "FROM users u", "FROM users u CROSS JOIN LATERAL pg_sleep(60) AS s", 1)
	var open, polls atomic.Int64
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			open.Add(int64(ourOpenTransactions(t, f.ours)))
			polls.Add(1)
		}
	}()
	start := time.Now()
	_, err = f.r.Read(context.Background(), f.conn)
	elapsed := time.Since(start)
	close(stop)
	<-polled
	if err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Fatalf("Read = %v, want the statement timeout", err)
	}
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Errorf("the read ended after %v, want the %v timeout", elapsed, timeout)
	}
	if polls.Load() < 5 || open.Load() != 0 {
		t.Errorf("%d transactions of ours seen open in %d looks while the source slept; want none", open.Load(), polls.Load())
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents"); n != 0 {
		t.Errorf("a failed read stored %d records", n)
	}
}

// Between two pages of the source, no transaction of ours is open: the rows
// read so far wait in the spool, not in an open COPY.
func TestNoTransactionOfOursBetweenPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 300)
	f.r.PageSize = 50
	seen := 0
	f.r.pageRead = func(int) { seen += ourOpenTransactions(t, f.ours) }
	res := f.read(t)
	if res.Pages != 7 || seen != 0 {
		t.Errorf("%d pages; %d transactions of ours open between them, want none", res.Pages, seen)
	}
	if res.Import.Inserted != 900 {
		t.Errorf("inserted %d, want 900", res.Import.Inserted)
	}
}

// The query's columns are checked, names and types, before any page is read.
func TestColumnsChecked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	ctx := context.Background()
	for q, want := range map[string]string{
		strings.Replace(usersQuery, "lpad(u.id::text, 9, '0') AS external_id", "u.id AS external_id", 1):  "external_id is bigint: want text",
		strings.Replace(usersQuery, "u.sms_optin_at AS sms_at", "u.sms_optin_at::timestamp AS sms_at", 1): "timestamp without time zone",
		strings.Replace(usersQuery, "u.sms_optin_at AS sms_at", "u.sms_optin_at::date AS sms_at", 1):      "sms_at is date: want timestamptz",
		strings.Replace(usersQuery, ", u.phone,", ",", 1):                                                 "no column phone",
		strings.Replace(usersQuery, "u.email, u.phone", "u.email, u.phone, u.deleted_at", 1):              `"deleted_at" that is not read`,
		strings.Replace(usersQuery, "u.email, u.phone", "u.email, u.phone, 'x' AS email", 1):              "email twice",
		"SELECT * FROM nosuchtable": "nosuchtable",
	} {
		f.conn.SourceQuery = q
		_, err := f.r.Probe(ctx, f.conn)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n-> %v, want %q", q, err, want)
		}
	}
}

// Probe reads one page, checks every value, and stores nothing.
func TestProbe(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 120)
	f.r.PageSize = 50
	mustExec(t, f.brand, `UPDATE users SET email = 'bad' WHERE id = 3`)
	res, err := f.r.Probe(context.Background(), f.conn)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 1 || res.Users != 50 || res.Rows != 149 || res.RejectedValues != 1 {
		t.Errorf("probe = %+v, want 1 page, 50 users, 149 rows, 1 rejected", res)
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents") + count(t, f.ours, "SELECT count(*) FROM imports"); n != 0 {
		t.Errorf("Probe stored %d rows", n)
	}
}

// The optional source columns are read as the files' platform column: a
// platform name or an HS_* code; an IYS_* value is refused like in a file;
// NULL gives the connector's default. Phones may be E.164; a 10-digit number
// starting with 5 is kept and counted.
func TestSourceColumnsAndPhones(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 6)
	mustExec(t, f.brand, `ALTER TABLE users ADD COLUMN sms_src text, ADD COLUMN call_src text, ADD COLUMN email_src text`)
	mustExec(t, f.brand, `UPDATE users SET sms_src = 'mobileapp', call_src = 'HS_CAGRI_MERKEZI', email_src = 'web' WHERE id = 1`)
	mustExec(t, f.brand, `UPDATE users SET sms_src = 'IYS_WEB', phone = '+905331112233' WHERE id = 2`)
	mustExec(t, f.brand, `UPDATE users SET sms_src = 'somewhere', phone = '5331112244' WHERE id = 4`)
	mustExec(t, f.brand, `UPDATE users SET phone = '+9053311122334455' WHERE id = 5`)
	f.conn.SourceQuery = strings.Replace(usersQuery, "FROM users u",
		", u.sms_src AS sms_source, u.call_src AS call_source, u.email_src AS email_source FROM users u", 1)
	res := f.read(t)
	source := func(id, typ string) string {
		t.Helper()
		var s string
		if err := f.ours.QueryRow("SELECT source FROM consents WHERE external_id = $1 AND type = $2", id, typ).Scan(&s); err != nil {
			return err.Error()
		}
		return s
	}
	for _, tc := range []struct{ id, typ, want string }{
		{"000000001", "MESAJ", "HS_MOBIL"}, {"000000001", "ARAMA", "HS_CAGRI_MERKEZI"}, {"000000001", "EPOSTA", "HS_WEB"},
		{"000000002", "ARAMA", "HS_WEB"}, {"000000003", "MESAJ", "HS_WEB"}, {"000000004", "MESAJ", "HS_WEB"},
	} {
		if got := source(tc.id, tc.typ); got != tc.want {
			t.Errorf("user %s %s: source %s, want %s", tc.id, tc.typ, got, tc.want)
		}
	}
	if got := source("000000002", "MESAJ"); !strings.Contains(got, "no rows") {
		t.Errorf("an IYS_ source was stored: %s", got)
	}
	var rcp string
	if err := f.ours.QueryRow("SELECT recipient FROM consents WHERE external_id = '000000002' AND type = 'ARAMA'").Scan(&rcp); err != nil || rcp != "+905331112233" {
		t.Errorf("an E.164 phone was stored as %q (%v)", rcp, err)
	}
	if err := f.ours.QueryRow("SELECT recipient FROM consents WHERE external_id = '000000004' AND type = 'MESAJ'").Scan(&rcp); err != nil || rcp != "+5331112244" {
		t.Errorf("a 10-digit number starting with 5 was stored as %q (%v)", rcp, err)
	}
	// User 2's MESAJ (IYS_WEB), user 5's MESAJ and ARAMA (16 digits).
	if res.RejectedValues != 3 || res.UnknownPlatform != 1 {
		t.Errorf("rejected %d, unknown platform %d; want 3 and 1", res.RejectedValues, res.UnknownPlatform)
	}
	// User 4's MESAJ and ARAMA are kept with the warning, counted in the
	// read's log line.
	if res.MaybeMissingCountryCode != 2 {
		t.Errorf("maybe missing country code = %d, want 2", res.MaybeMissingCountryCode)
	}
	logged := false
	for _, e := range f.logs.FilterMessage("read the user-table source").All() {
		logged = e.ContextMap()["maybe_missing_country_code"] == int64(2)
	}
	if !logged {
		t.Error("the warning is not counted in the read's log line")
	}
	for _, e := range f.logs.FilterMessage("source: skipped a value that fails its checks").All() {
		if rec := e.ContextMap()["recipient"].(string); strings.Contains(rec, "1112233") || strings.Contains(rec, "3311122334") {
			t.Errorf("a recipient logged unmasked: %q", rec)
		}
		if e.ContextMap()["external_id"] == "000000002" && e.ContextMap()["field"] != "platform" {
			t.Errorf("an IYS_ source is refused as field %v, want platform like in a file", e.ContextMap()["field"])
		}
	}
}
