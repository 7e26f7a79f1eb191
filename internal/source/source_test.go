package source

import (
	"context"
	"database/sql"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// usersQuery is the README's sample query over a typical users table.
const usersQuery = `SELECT lpad(u.id::text, 9, '0') AS external_id, u.email, u.phone,
       CASE u.sms_optin WHEN true THEN 'ONAY' WHEN false THEN 'RET' END AS sms_status, u.sms_optin_at AS sms_at,
       CASE u.call_optin WHEN true THEN 'ONAY' WHEN false THEN 'RET' END AS call_status, u.call_optin_at AS call_at,
       CASE u.email_optin WHEN true THEN 'ONAY' WHEN false THEN 'RET' END AS email_status, u.email_optin_at AS email_at
FROM users u WHERE u.deleted_at IS NULL`

type fixture struct {
	st       *store.Store
	ours     *sql.DB // our database, for counts
	ourURL   string
	brand    *sql.DB // the brand's database, as its owner: to set it up
	brandURL string
	conn     store.Connector
	r        *Reader
	logs     *observer.ObservedLogs
}

// newFixture makes our store, a brand database (another fresh database) with
// n users, every channel set, and a connector reading it.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	ctx := context.Background()
	ourURL := storedb.NewDB(t)
	st, err := store.Open(ctx, ourURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ours := openDB(t, ourURL)
	brandURL := pgtest.NewDB(t)
	brand := openDB(t, brandURL)
	mustExec(t, brand, `CREATE TABLE users (
		id bigint PRIMARY KEY, email text, phone text,
		sms_optin boolean, sms_optin_at timestamptz,
		call_optin boolean, call_optin_at timestamptz,
		email_optin boolean, email_optin_at timestamptz,
		deleted_at timestamptz)`)
	mustExec(t, brand, `INSERT INTO users
		SELECT i, 'user' || i || '@example.com', '90533' || lpad(i::text, 7, '0'),
		       i % 3 <> 0, now() - interval '2 days' - i * interval '1 second',
		       i % 2 = 0,  now() - interval '3 days' - i * interval '1 second',
		       true,       now() - interval '4 days' - i * interval '1 second',
		       NULL
		FROM generate_series(1, $1) AS i`, n)
	conn, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: "600001", IYSCode: "700001",
		Channels:    []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta},
		FirstSyncAt: time.Now(), SourceQuery: usersQuery})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	src, err := Open(brandURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return &fixture{st: st, ours: ours, ourURL: ourURL, brand: brand, brandURL: brandURL, conn: conn,
		r: New(st, src, zap.New(core)), logs: logs}
}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (f *fixture) read(t *testing.T) Result {
	t.Helper()
	res, err := f.r.Read(context.Background(), f.conn)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// markSynced makes every record synced, as after a push.
func (f *fixture) markSynced(t *testing.T) {
	mustExec(t, f.ours, `UPDATE consents SET state = 'synced', outcome = 'accepted', synced_at = now()`)
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// 200,000 users are read in 40 pages with flat memory: the heap after the
// last page is within a few MB of the heap after the 5th. Holding the users
// read (~40 MB for 195,000 of them) would break the bound.
func TestReadPagesFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 users")
	}
	const users = 200_000
	f := newFixture(t, users)
	f.r.PageSize = 5000
	var base, peak uint64
	pages := 0
	f.r.pageRead = func(page int) {
		pages = page
		h := heapInuse()
		switch {
		case page == 5:
			base, peak = h, h
		case page > 5 && h > peak:
			peak = h
		}
	}
	start := time.Now()
	res := f.read(t)
	t.Logf("read %d users in %d pages in %v; heap in use after page 5: %.1f MB, peak after: %.1f MB",
		res.Users, res.Pages, time.Since(start), float64(base)/1e6, float64(peak)/1e6)
	if pages != users/5000+1 || res.Pages != pages {
		t.Errorf("pages = %d (hook %d), want %d (the last one empty)", res.Pages, pages, users/5000+1)
	}
	if growth := int64(peak) - int64(base); growth > 8<<20 {
		t.Errorf("heap grew by %d bytes from page 5 to the end: memory is not flat", growth)
	}
	// Every user: MESAJ for all, ARAMA for all (ONAY or RET), EPOSTA for all.
	if res.Users != users || res.Rows != 3*users || res.Import.Inserted != 3*users {
		t.Errorf("users %d rows %d inserted %d, want %d, %d, %d", res.Users, res.Rows, res.Import.Inserted, users, 3*users, 3*users)
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents WHERE state = 'pending'"); n != 3*users {
		t.Errorf("pending = %d, want %d", n, 3*users)
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents WHERE type = 'ARAMA' AND status = 'RET'"); n != users/2 {
		t.Errorf("ARAMA RET = %d, want %d", n, users/2)
	}
}

// After one user's SMS permission changes in the source (a newer sms_at), the
// next read makes exactly that record pending, its version bumped, and no
// other; a read with no change makes none.
func TestChangedPermissionBecomesPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1000)
	f.r.PageSize = 97 // pages that do not divide the users
	f.read(t)
	f.markSynced(t)

	res := f.read(t)
	if res.Import.Inserted+res.Import.Updated != 0 || count(t, f.ours, "SELECT count(*) FROM consents WHERE state = 'pending'") != 0 {
		t.Fatalf("an unchanged source changed records: %+v", res.Import)
	}

	mustExec(t, f.brand, `UPDATE users SET sms_optin = NOT sms_optin, sms_optin_at = now() - interval '1 minute' WHERE id = 500`)
	res = f.read(t)
	if res.Import.Updated != 1 || res.Import.Inserted != 0 {
		t.Errorf("updated %d inserted %d, want 1 and 0", res.Import.Updated, res.Import.Inserted)
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents WHERE state = 'pending'"); n != 1 {
		t.Fatalf("pending = %d, want exactly 1", n)
	}
	if n := count(t, f.ours, `SELECT count(*) FROM consents WHERE state = 'pending' AND type = 'MESAJ'
		AND recipient = '+905330000500' AND external_id = '000000500' AND version = 2`); n != 1 {
		t.Errorf("the pending record is not user 500's MESAJ at version 2")
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents WHERE version <> 1"); n != 1 {
		t.Errorf("%d records have a bumped version, want 1", n)
	}
	// An older time in the source loses to the stored record (newest wins).
	mustExec(t, f.brand, `UPDATE users SET email_optin = false, email_optin_at = '2020-01-01' WHERE id = 7`)
	if res := f.read(t); res.Import.Updated != 0 {
		t.Errorf("an older permission updated %d records", res.Import.Updated)
	}
	// One imports row per channel, as the intake writes them.
	if n := count(t, f.ours, "SELECT count(*) FROM imports WHERE path = 'source:600001'"); n != 2*4 {
		t.Errorf("imports rows = %d, want 2 per read", n)
	}
}

// A user who disappears from the source is reported, and their records kept.
func TestDisappearedUsersReported(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 300)
	f.read(t)
	mustExec(t, f.brand, `UPDATE users SET deleted_at = now() WHERE id IN (10, 250)`)
	mustExec(t, f.brand, `DELETE FROM users WHERE id = 11`)
	res := f.read(t)
	if res.Import.Disappeared != 3 {
		t.Errorf("disappeared = %d, want 3", res.Import.Disappeared)
	}
	n, ids, err := f.st.SourceDisappeared(context.Background(), f.conn.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(ids) != 2 || ids[0] != "000000010" || ids[1] != "000000011" {
		t.Errorf("SourceDisappeared = %d %v, want 3 [000000010 000000011]", n, ids)
	}
	if c := count(t, f.ours, "SELECT count(*) FROM consents WHERE external_id IN ('000000010', '000000011', '000000250')"); c != 9 {
		t.Errorf("%d records of the disappeared users, want all 9 kept", c)
	}
	logged := false
	for _, e := range f.logs.All() {
		if e.Message == "read the user-table source" && e.ContextMap()["disappeared_users"] == int64(3) {
			logged = true
		}
	}
	if !logged {
		t.Error("the disappeared users are not in the read's log line")
	}
	// Back in the source: no longer reported.
	mustExec(t, f.brand, `UPDATE users SET deleted_at = NULL`)
	if res := f.read(t); res.Import.Disappeared != 1 {
		t.Errorf("disappeared = %d after two users came back, want 1 (user 11, deleted)", res.Import.Disappeared)
	}
	if n, _, _ := f.st.SourceDisappeared(context.Background(), f.conn.ID, 10); n != 1 {
		t.Errorf("SourceDisappeared = %d, want 1 (user 11, deleted)", n)
	}
}

// Bad values are skipped, counted and logged masked; their users' good
// values and every other user are kept, and the run goes on.
func TestBadRowsSkipped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100)
	mustExec(t, f.brand, `UPDATE users SET phone = '12ab' WHERE id = 3`)                          // MESAJ and ARAMA bad
	mustExec(t, f.brand, `UPDATE users SET email = 'not-an-address' WHERE id = 4`)                // EPOSTA bad
	mustExec(t, f.brand, `UPDATE users SET sms_optin_at = now() + interval '1 day' WHERE id = 5`) // MESAJ in the future
	mustExec(t, f.brand, `UPDATE users SET call_optin_at = NULL WHERE id = 6`)                    // ARAMA with no time
	mustExec(t, f.brand, `UPDATE users SET sms_optin = NULL, sms_optin_at = NULL WHERE id = 8`)   // no permission: not a fault
	res := f.read(t)
	if res.RejectedValues != 5 {
		t.Errorf("rejected values = %d, want 5", res.RejectedValues)
	}
	if want := 3*100 - 5 - 1; res.Rows != want {
		t.Errorf("rows = %d, want %d", res.Rows, want)
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents"); n != res.Rows {
		t.Errorf("%d records, want %d", n, res.Rows)
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents WHERE external_id = '000000003' AND type = 'EPOSTA'"); n != 1 {
		t.Errorf("user 3's good EPOSTA was not kept")
	}
	// The sms imports row counts user 3 rejected (no valid sms value).
	if n := count(t, f.ours, "SELECT rejected FROM imports WHERE channel = 'sms'"); n != 1 {
		t.Errorf("sms rejected = %d, want 1 (user 3)", n)
	}
	warned := 0
	for _, e := range f.logs.FilterMessage("source: skipped a value that fails its checks").All() {
		warned++
		if rec := e.ContextMap()["recipient"].(string); rec == "12ab" || rec == "not-an-address" {
			t.Errorf("recipient logged unmasked: %q", rec)
		}
	}
	if warned != 5 {
		t.Errorf("%d warnings, want 5", warned)
	}
}

// A source query is only read: its transactions are READ ONLY.
func TestSourceIsReadOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	f.conn.SourceQuery = `SELECT * FROM (SELECT '1' AS external_id, NULL AS email, NULL AS phone, NULL AS sms_status,
		NULL::timestamptz AS sms_at, NULL AS call_status, NULL::timestamptz AS call_at, NULL AS email_status,
		NULL::timestamptz AS email_at, nextval('s') AS n) AS x`
	mustExec(t, f.brand, "CREATE SEQUENCE s")
	if _, err := f.r.Read(context.Background(), f.conn); err == nil {
		t.Fatal("a query that writes (nextval) ran")
	}
}

// The engine's hook reads a connector with a source query, leaves one without
// alone, and fails (the push goes on) when the brand database is not set.
func TestPullHook(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20)
	ctx := context.Background()
	ref := consent.ConnectorRef{ID: f.conn.ID, BrandCode: f.conn.BrandCode, IYSCode: f.conn.IYSCode, Active: true}
	if err := f.r.Pull(ctx, ref, 1); err != nil {
		t.Fatal(err)
	}
	if n := count(t, f.ours, "SELECT count(*) FROM consents"); n != 60 {
		t.Errorf("%d records after the hook, want 60", n)
	}
	other, _, err := f.st.InstallConnector(ctx, store.Connector{BrandCode: "600002", IYSCode: "700001",
		Channels: []consent.Type{consent.TypeMesaj}, FirstSyncAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	noDB := New(f.st, nil, nil)
	if err := noDB.Pull(ctx, consent.ConnectorRef{ID: other.ID, BrandCode: other.BrandCode}, 1); err != nil {
		t.Errorf("a connector without a source query: %v", err)
	}
	if err := noDB.Pull(ctx, ref, 1); err == nil || !strings.Contains(err.Error(), "IYS_SOURCE_DATABASE_URL") {
		t.Errorf("no brand database: %v, want an error naming IYS_SOURCE_DATABASE_URL", err)
	}
}
