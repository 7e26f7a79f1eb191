package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// firstFile is a file whose order is not its keys' order: phones falling,
// two types on some lines, every source (HS_2015's records count on no
// day), consent dates over several Türkiye days and in an hour that held a
// day's start, external ids COPY must escape. keyTwice adds, at the end, a
// newer line for the first line's key and a line equal to the third row's
// (it wins as the later line).
func firstFile(t *testing.T, keyTwice bool) []ImportRow {
	sources := []consent.Source{consent.SourceMesaj, consent.SourceWeb, "HS_2015", "HS_FIZIKSEL_ORTAM", "HS_EORTAM"}
	var rows []ImportRow
	for i := range 120 {
		r := ImportRow{Line: i + 1, Recipient: fmt.Sprintf("+90533%07d", 9_000_000-i*7919), RecipientType: consent.Bireysel,
			Type: consent.TypeMesaj, Status: []consent.Status{consent.StatusOnay, consent.StatusRet}[i%2],
			ConsentDate: consent.NewDate(time.Date(2025, 5, 10+i%4, 20+i%4, i%60, 0, 0, time.UTC)),
			Source:      sources[i%len(sources)], ExternalID: []string{"", "u\t1", `back\slash`, "çağrı\n"}[i%4]}
		rows = append(rows, r)
		if i%3 == 0 {
			r.Type = consent.TypeArama
			rows = append(rows, r)
		}
	}
	// 1905: Istanbul's offset was +01:56:56, so a day began at 22:03:04 UTC,
	// within an hour: the copy counts such an hour's records one by one.
	for i, at := range []time.Time{time.Date(1905, 5, 10, 22, 1, 0, 0, time.UTC), time.Date(1905, 5, 10, 22, 5, 0, 0, time.UTC)} {
		rows = append(rows, ImportRow{Line: len(rows) + 1, Recipient: fmt.Sprintf("+90532000000%d", i), RecipientType: consent.Bireysel,
			Type: consent.TypeMesaj, Status: consent.StatusOnay, ConsentDate: consent.NewDate(at), Source: consent.SourceWeb})
	}
	if keyTwice {
		newer := rows[0]
		newer.Line, newer.Status, newer.ConsentDate = len(rows)+1, consent.StatusRet, date(t, "20.05.2025 10:00:00")
		same := rows[2]
		same.Line = len(rows) + 2
		rows = append(rows, newer, same)
	}
	return rows
}

// dump reads q's rows as text, one string a row.
func dump(t *testing.T, s *Store, q string, args ...any) []string {
	t.Helper()
	rows, err := s.db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFirstFileIsCopiedAsTheMergeWouldWriteIt imports one file as the first
// of one connector, and through the merge into another: records, events,
// kept counts, the imports row and the result must be the same, whichever
// path the file took. A file with no key twice is copied straight into the
// records (their ids follow the file's order); one with a key twice is read
// again into the staging table and merged (its new records are inserted in
// key order, see TestFreshRecordsAreInsertedInKeyOrder), whether the scan
// for a key twice finds it or, the scan blind, the consents key refuses it.
func TestFirstFileIsCopiedAsTheMergeWouldWriteIt(t *testing.T) {
	for _, tc := range []struct {
		name            string
		keyTwice, blind bool
	}{{"no key twice: copied", false, false}, {"a key twice: merged", true, false},
		{"a key twice the scan missed: merged", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			first, merged := install(t, s, "FIRST"), install(t, s, "MERGED")
			rows := firstFile(t, tc.keyTwice)
			// Read once for the COPY, and again for the scan for a key twice
			// (at once) and, with one, for the merge.
			var againReads atomic.Int32
			again := func(emit func(ImportRow) error) error {
				if againReads.Add(1) == 1 && tc.blind {
					return errors.New("the scan's read fails")
				}
				return fromSlice(rows...)(emit)
			}
			res, err := s.ImportFile(context.Background(), first.ID, fixed(metaFor(rows...)), fromSlice(rows...), again)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int32{false: 1, true: 2}[tc.keyTwice]; againReads.Load() != want {
				t.Errorf("the file was read again %d times, want %d", againReads.Load(), want)
			}
			s.path = mergeOnly
			want := importRows(t, s, merged.ID, rows...)
			if res != want {
				t.Errorf("result %+v, the merge's %+v", res, want)
			}

			// Which path it took: the records' ids in the file's order, or in the keys'.
			inFileOrder := dump(t, s, `SELECT bool_and(rising) FROM (
				SELECT id > lag(id) OVER (ORDER BY split_part(origin, ':', 3)::int, type DESC) AS rising
				FROM consents WHERE connector_id = $1) x`, first.ID)
			if got := inFileOrder[0] == "true"; got == tc.keyTwice {
				t.Errorf("ids in the file's order: %v, want %v", got, !tc.keyTwice)
			}

			same := func(what, q string) {
				t.Helper()
				a, b := dump(t, s, q, first.ID), dump(t, s, q, merged.ID)
				if len(a) == 0 || !slices.Equal(a, b) {
					t.Errorf("%s differ:\ncopied %q\nmerged %q", what, a, b)
				}
			}
			same("records", `SELECT recipient, recipient_type, type, status, consent_date, source, external_id, version,
				state, outcome, iys_code, transaction_id, attempts, batch_id, synced_at, origin, event_seq,
				updated_at = created_at, next_attempt_at = created_at
				FROM consents WHERE connector_id = $1 ORDER BY recipient, type`)
			same("events", `SELECT c.recipient, c.type, e.seq, e.kind, e.origin, e.status, e.consent_date, e.source,
				e.recipient_type, e.external_id, e.version, e.state, e.import_id = i.id, e.request_id, e.subrequest_id,
				e.transaction_id, e.creation_date, e.outcome, e.iys_code, e.iys_message, e.at = i.imported_at,
				e.hash = c.event_hash
				FROM consents c JOIN consent_events e ON e.consent_id = c.id JOIN imports i ON i.connector_id = c.connector_id
				WHERE c.connector_id = $1 ORDER BY 1, 2, 3`)
			same("kept counts", `SELECT state, outcome, pending_day, sum(n) FROM consent_counts
				WHERE connector_id = $1 GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3`)
			same("imports rows", `SELECT path, channel, lines, blank, valid, rejected, superseded, rows, inserted,
				updated, unchanged FROM imports WHERE connector_id = $1`)
			for _, c := range []Connector{first, merged} {
				v, err := s.VerifyChains(context.Background(), c.ID)
				if err != nil || len(v.Broken) > 0 || v.Records != int(want.Inserted) {
					t.Errorf("verify %s: %+v, %v", c.BrandCode, v, err)
				}
			}
		})
	}
}

// TestFirstFileCopyKeepsOtherWritersOut: while a first file is copied into
// the records, in the file's order, an intake request for the same
// connector waits for the lock instead of inserting one of the file's keys
// (the two would each wait on the other's new key). Once the file is in,
// the request merges newest-wins over it.
func TestFirstFileCopyKeepsOtherWritersOut(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	rows := firstFile(t, false)
	ctx := context.Background()
	imported, resume := importPausedAtHalf(s, c.ID, rows)
	// A newer consent for the file's last key, by the intake.
	item := rows[len(rows)-1]
	item.Line, item.Status, item.ConsentDate = 1, consent.StatusRet, date(t, "20.05.2025 10:00:00")
	intake := make(chan error, 1)
	go func() {
		_, err := s.ImportItems(ctx, c.ID, "api:crm", "req-1", []ImportRow{item}, []IntakeChannel{{Channel: "sms", Valid: 1}})
		intake <- err
	}()
	// The request's session waits on a lock, not on one of the file's keys.
	for waiting := 0; waiting == 0; {
		select {
		case err := <-intake:
			t.Fatalf("the intake did not wait for the file: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		waiting = count(t, s, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE NOT l.granted AND l.locktype = 'transactionid' AND a.query LIKE 'SELECT channels FROM connectors%'`)
	}
	close(resume)
	if err := <-imported; err != nil {
		t.Fatal(err)
	}
	if err := <-intake; err != nil {
		t.Fatal(err)
	}
	recs := records(t, s, c.ID)
	if len(recs) != len(rows) {
		t.Fatalf("%d records, want %d", len(recs), len(rows))
	}
	got := recs[item.Recipient+"/"+string(item.Type)]
	if got.Status != consent.StatusRet || got.Version != 2 || !strings.HasPrefix(got.Origin, "api:crm:") {
		t.Errorf("the intake's newer consent: %+v", got)
	}
}

// TestImportFailsWholeOnServerRestart: PostgreSQL restarts while a file is
// being COPYed, into the records (a first file) or into the staging table.
// The import fails (it hung for good before errConnLost), nothing of it
// stays (records, history, counts, the imports row), and the same file then
// imports whole.
func TestImportFailsWholeOnServerRestart(t *testing.T) {
	for _, p := range []struct {
		name string
		path importPath
	}{{"copy", allPaths}, {"staging", mergeOnly}} {
		t.Run(p.name, func(t *testing.T) {
			s, cluster := storeOnCluster(t)
			ctx := context.Background()
			s.path = p.path
			c := install(t, s, "B")
			rows := firstFile(t, false)
			imported, resume := importPausedAtHalf(s, c.ID, rows)
			if err := cluster.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			close(resume)
			if err := <-imported; err == nil || !Transient(err) {
				t.Fatalf("the import through a server restart: %v, transient %v", err, Transient(err))
			}
			if n := count(t, s, `SELECT (SELECT count(*) FROM consents) + (SELECT count(*) FROM consent_events)
				+ (SELECT count(*) FROM consent_counts) + (SELECT count(*) FROM imports)`); n != 0 {
				t.Fatalf("%d rows of the failed import stayed", n)
			}
			if res := importRows(t, s, c.ID, rows...); res.Inserted != len(rows) {
				t.Fatalf("import after the restart = %+v", res)
			}
			if v, err := s.VerifyChains(ctx, c.ID); err != nil || len(v.Broken) > 0 || v.Records != len(rows) {
				t.Fatalf("verify: %+v, %v", v, err)
			}
			checkKeptCounts(t, s)
		})
	}
}

// importPausedAtHalf imports rows as a first file in a goroutine of its own,
// and returns once half of them were emitted: the import waits there until
// resume is closed, then sends its result on imported.
func importPausedAtHalf(s *Store, connectorID int64, rows []ImportRow) (imported chan error, resume chan struct{}) {
	half, resume := make(chan struct{}), make(chan struct{})
	src := func(emit func(ImportRow) error) error {
		for i, r := range rows {
			if i == len(rows)/2 {
				close(half)
				<-resume
			}
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
	imported = make(chan error, 1)
	go func() {
		_, err := s.ImportFile(context.Background(), connectorID, fixed(metaFor(rows...)), src, fromSlice(rows...))
		imported <- err
	}()
	<-half
	return imported, resume
}
