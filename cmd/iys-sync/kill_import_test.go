package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run main() instead of the tests (see
// TestMain), so that a test can run the real command as a process of its own.
const runMainEnv = "IYS_SYNC_RUN_MAIN"

const (
	killAppName = "iys-kill-test" // the killed import's session, as pg_stat_activity names it
	killLines   = 1_000_000       // lines of the large file: its import takes several seconds
	mergeLines  = 300_000         // lines of the file killed in its merge: a second or two of it
	seedLines   = 1000            // consents stored before: the files have newer ones for them
)

// TestImportKilledLeavesDatabaseAsBefore checks that killing
// the process in the middle of importing a large file leaves the database as
// it was before the import. The real binary (this test binary running main)
// is SIGKILLed while PostgreSQL is receiving its COPY, again while the server
// runs the merge into consents, and while a new brand's first file is copied
// straight into consents; each time consents, imports and the history must be
// exactly as before. The same file then imports whole.
func TestImportKilledLeavesDatabaseAsBefore(t *testing.T) {
	if testing.Short() {
		t.Skip("imports a million-line file")
	}
	environ, db := installed(t)
	dir := t.TempDir()
	t0 := time.Now()

	// Before: consents of an earlier import, some of them already synced.
	seed := filepath.Join(dir, "seed.txt")
	writeKillFile(t, seed, seedLines, time.Now().Add(-3*time.Hour), "seed")
	if r := runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", seed); r.code != 0 {
		t.Fatalf("seed import: exit %d, %s", r.code, r.stderr)
	}
	if _, err := db.Exec(`UPDATE consents SET state = 'synced', outcome = 'accepted', synced_at = now(),
		transaction_id = 'tx-' || id WHERE id % 3 = 0`); err != nil {
		t.Fatal(err)
	}
	// A second brand with no records: its first file is copied straight
	// into consents.
	if r := runCmd(t, environ, "install", "--brand-code", "B2", "--iys-code", "I2", "--skip-verify"); r.code != 0 {
		t.Fatalf("install B2: exit %d, %s", r.code, r.stderr)
	}
	before := dbFingerprint(t, db)
	if !strings.HasPrefix(before.consents, strconv.Itoa(seedLines)+" ") || !strings.HasPrefix(before.imports, "1 ") {
		t.Fatalf("before the kill: %+v", before)
	}

	// The large file: newer consents for every stored record, then new ones.
	big := filepath.Join(dir, "big.txt")
	writeKillFile(t, big, killLines, time.Now().Add(-time.Hour), "big")
	// To kill in the merge, the first lines of it: the merge is as easy to
	// catch, and the test does not wait for a million lines to be read.
	mid := filepath.Join(dir, "mid.txt")
	writeKillFile(t, mid, mergeLines, time.Now().Add(-time.Hour), "big")
	t.Logf("setup %v", time.Since(t0).Round(time.Millisecond))

	childURL := withAppName(t, environ["IYS_DATABASE_URL"], killAppName)
	for _, kp := range []struct {
		name  string
		brand string
		file  string
		query string // true while the import is at the point to kill it
	}{
		// Half the file is on the server, in the staging table.
		{"while the server receives the COPY", "B1", big, `
			SELECT EXISTS (SELECT FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid)
			               WHERE a.application_name = $1 AND a.datname = current_database()
			                 AND p.tuples_processed >= ` + strconv.Itoa(killLines/2) + `)`},
		// The one statement that writes consents, the merge, is running
		// (matched by its start: pg_stat_activity keeps only a statement's
		// first 1,024 bytes).
		{"while the server merges into consents", "B1", mid, `
			SELECT EXISTS (SELECT FROM pg_stat_activity
			               WHERE application_name = $1 AND datname = current_database()
			                 AND state = 'active' AND query LIKE 'WITH staged AS (%')`},
		// Half of B2's first file is in consents.
		{"while the server copies a first file into the records", "B2", big, `
			SELECT EXISTS (SELECT FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid)
			               WHERE a.application_name = $1 AND a.datname = current_database()
			                 AND p.relid = 'consents'::regclass AND p.tuples_processed >= ` + strconv.Itoa(killLines/2) + `)`},
	} {
		t.Run(kp.name, func(t *testing.T) {
			start := time.Now()
			killImportAt(t, db, childURL, kp.brand, kp.file, kp.query)
			if after := dbFingerprint(t, db); after != before {
				t.Fatalf("the killed import changed the database:\nbefore %+v\nafter  %+v", before, after)
			}
			var staging int
			if err := db.QueryRow(`SELECT count(*) FROM pg_class WHERE relname = 'import_rows'`).Scan(&staging); err != nil || staging != 0 {
				t.Fatalf("staging tables left behind: %d (%v)", staging, err)
			}
			t.Logf("killed and checked in %v", time.Since(start).Round(time.Millisecond))
		})
	}

	// The same file, run to completion, arrives whole.
	start := time.Now()
	r := runCmd(t, environ, "import", "--json", "--brand-code", "B1", "--channel", "sms", big)
	if r.code != 0 {
		t.Fatalf("import after the kills: exit %d, %s", r.code, r.stderr)
	}
	if f := decodeImport(t, r).Files[0]; f.Lines != killLines || f.Valid != killLines || f.Imported != killLines {
		t.Fatalf("import after the kills: %+v", f)
	}
	t.Logf("full import %v", time.Since(start).Round(time.Millisecond))
	var total, fromBig, updated, pending, distinct, imports int
	if err := db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE external_id LIKE 'big%'),
		count(*) FILTER (WHERE version = 2), count(*) FILTER (WHERE state = 'pending'),
		count(DISTINCT recipient), (SELECT count(*) FROM imports) FROM consents`).
		Scan(&total, &fromBig, &updated, &pending, &distinct, &imports); err != nil {
		t.Fatal(err)
	}
	if total != killLines || fromBig != killLines || distinct != killLines || updated != seedLines || pending != killLines || imports != 2 {
		t.Fatalf("after the import: %d records, %d from the file, %d distinct, %d updated, %d pending, %d imports; want %d, %d, %d, %d, %d, 2",
			total, fromBig, distinct, updated, pending, imports, killLines, killLines, killLines, seedLines, killLines)
	}
}

// killImportAt runs `iys-sync import` on file as a process of its own,
// SIGKILLs it as soon as atPoint (a query with the session's application name
// as $1) is true, and waits until the server has ended its session.
func killImportAt(t *testing.T, db *sql.DB, dbURL, brand, file, atPoint string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "import", "--brand-code", brand, "--channel", "sms", file)
	cmd.Env = append(withoutIYS(os.Environ()), runMainEnv+"=1", "IYS_DATABASE_URL="+dbURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // it may be gone already
		<-exited
	})

	deadline := time.Now().Add(time.Minute)
	for {
		var at bool
		if err := db.QueryRow(atPoint, killAppName).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if at {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the import ended (%v) before it could be killed at that point; make the file larger?\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import never got there; stderr: %s", stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	exited <- err // for the cleanup
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the import was not killed but ended by itself (%v); stdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	// A backend in the middle of a statement only notices the lost client
	// when it next talks to it: after the merge, not before.
	waitUntil(t, time.Minute, "the server to end the killed import's session", func() bool {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
			killAppName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// fingerprint sums up what an import may change.
type fingerprint struct{ consents, imports, connectors, events, counts string }

func dbFingerprint(t *testing.T, db *sql.DB) fingerprint {
	t.Helper()
	var fp fingerprint
	err := db.QueryRowContext(context.Background(), `SELECT
		(SELECT count(*) || ' ' || md5(coalesce(string_agg(c::text, '|' ORDER BY id), '')) FROM consents c),
		(SELECT count(*) || ' ' || md5(coalesce(string_agg(i::text, '|' ORDER BY id), '')) FROM imports i),
		(SELECT count(*) || ' ' || md5(coalesce(string_agg(k::text, '|' ORDER BY id), '')) FROM connectors k),
		(SELECT count(*) || ' ' || md5(coalesce(string_agg(e::text, '|' ORDER BY consent_id, seq), '')) FROM consent_events e),
		(SELECT coalesce(string_agg(n::text, ' ' ORDER BY connector_id, state, outcome, pending_day), '') FROM
		 (SELECT connector_id, state, outcome, pending_day, sum(n) AS n FROM consent_counts GROUP BY 1, 2, 3, 4
		  HAVING sum(n) <> 0) k)`).
		Scan(&fp.consents, &fp.imports, &fp.connectors, &fp.events, &fp.counts)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// writeKillFile writes an SMS upload file of n lines with distinct phones
// (i*7919+12345 mod 10^9 is a permutation), the same phone for the same i in
// every file, consent times going back from newest, and external ids
// prefix+i.
func writeKillFile(t *testing.T, path string, n int, newest time.Time, prefix string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatal(err)
	}
	newest = newest.In(loc)
	var b []byte
	for i := range n {
		status := "ONAY"
		if i%2 == 1 {
			status = "RET"
		}
		b = strconv.AppendInt(b[:0], 905_000_000_000+(int64(i)*7919+12345)%1_000_000_000, 10)
		b = append(b, "; SMS; "+status+"; "...)
		b = newest.Add(-time.Duration(i%3000)*time.Second).AppendFormat(b, "02.01.2006 15:04:05")
		b = append(b, "; "+prefix...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// withAppName sets the connection's application_name, which lib/pq passes to
// the server: pg_stat_activity then tells the child's session apart.
func withAppName(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// withoutIYS drops IYS_* settings, so that the child sees only those given.
func withoutIYS(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "IYS_") {
			out = append(out, kv)
		}
	}
	return out
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
