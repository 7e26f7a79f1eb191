package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore opens a store on a fresh database.
func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	url := pgtest.NewDB(t)
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(func() { checkKeptCounts(t, s) })
	return s, url
}

// checkKeptCounts holds the kept counts (consent_counts, written by
// triggers) to a full count of the records, key by key. Every store test
// runs it at its end, after whatever writes it made: so every write path
// the tests exercise is checked, and so is one added later.
func checkKeptCounts(t testing.TB, s *Store) {
	t.Helper()
	const byKey = `SELECT connector_id, state, coalesce(outcome, '-') AS outcome, coalesce(pending_day::text, '-') AS day, n FROM (%s) k
		WHERE n <> 0 ORDER BY 1, 2, 3, 4`
	read := func(q string) []string {
		t.Helper()
		var rows []struct {
			ConnectorID int64  `db:"connector_id"`
			State       string `db:"state"`
			Outcome     string `db:"outcome"`
			Day         string `db:"day"`
			N           int64  `db:"n"`
		}
		if err := s.db.Select(&rows, fmt.Sprintf(byKey, q)); err != nil {
			if s.db.Ping() != nil {
				return nil // the test stopped the database
			}
			t.Fatalf("kept counts: %v", err)
		}
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = fmt.Sprintf("%d %s %s %s %d", r.ConnectorID, r.State, r.Outcome, r.Day, r.N)
		}
		return out
	}
	kept := read(`SELECT connector_id, state, outcome, pending_day, sum(n) AS n FROM consent_counts GROUP BY 1, 2, 3, 4`)
	full := read(`SELECT connector_id, state, outcome,
		CASE WHEN state = 'pending' AND source <> 'HS_2015' THEN (consent_date AT TIME ZONE 'Europe/Istanbul')::date END AS pending_day,
		count(*) AS n FROM consents GROUP BY 1, 2, 3, 4`)
	if !slices.Equal(kept, full) {
		t.Errorf("kept counts differ from the records:\nkept %v\nfull %v", kept, full)
	}
}

// bothMerges runs fn on a fresh store once per import path: a first file
// copied into the records, the merge's fast path (plain INSERT of new
// records) and the upsert-only fallback.
func bothMerges(t *testing.T, fn func(t *testing.T, s *Store)) {
	for _, p := range []struct {
		name string
		path importPath
	}{{"copy", allPaths}, {"fast", mergeOnly}, {"upsert-only", upsertOnly}} {
		t.Run(p.name, func(t *testing.T) {
			s, _ := newStore(t)
			s.path = p.path
			fn(t, s)
		})
	}
}

// install adds a connector for every channel.
func install(t testing.TB, s *Store, brand string) Connector {
	t.Helper()
	c, _, err := s.InstallConnector(context.Background(), Connector{
		BrandCode: brand, IYSCode: "IYS-" + brand,
		Channels:    []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta},
		FirstSyncAt: time.Date(2025, 5, 16, 1, 0, 0, 0, consent.Istanbul),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// date reads an upload timestamp.
func date(t testing.TB, s string) consent.Date {
	t.Helper()
	d, err := consent.ParseUploadTime(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sms is an SMS row of type MESAJ.
func sms(t testing.TB, line int, phone string, st consent.Status, when string) ImportRow {
	return ImportRow{Line: line, Recipient: phone, RecipientType: consent.Bireysel, Type: consent.TypeMesaj,
		Status: st, ConsentDate: date(t, when), Source: consent.SourceMesaj}
}

// fromSlice is a RowSource over rows, for tests.
func fromSlice(rows ...ImportRow) RowSource {
	return func(emit func(ImportRow) error) error {
		for _, r := range rows {
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// metaFor describes a file holding exactly these rows' lines, none blank or rejected.
func metaFor(rows ...ImportRow) ImportMeta {
	lines := map[int]bool{}
	for _, r := range rows {
		lines[r.Line] = true
	}
	return ImportMeta{Path: "test.txt", Channel: "sms", Lines: len(lines), Valid: len(lines)}
}

// fixed is a meta function for a file whose counts are known upfront.
func fixed(m ImportMeta) func() ImportMeta { return func() ImportMeta { return m } }

// importRows imports rows as one file and fails the test on error.
func importRows(t testing.TB, s *Store, connectorID int64, rows ...ImportRow) ImportResult {
	t.Helper()
	res, err := s.ImportFile(context.Background(), connectorID, fixed(metaFor(rows...)), fromSlice(rows...), fromSlice(rows...))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// records reads every record of the connector, keyed by recipient and type.
func records(t testing.TB, s *Store, connectorID int64) map[string]Record {
	t.Helper()
	out := map[string]Record{}
	err := s.ConsentsOf(context.Background(), connectorID, Filter{}, func(r Record) error {
		out[r.Recipient+"/"+string(r.Type)] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exec runs SQL on the store's database, for setting up states the engine
// would produce.
func execSQL(t testing.TB, s *Store, q string, args ...any) {
	t.Helper()
	if _, err := s.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// count runs a count query.
func count(t testing.TB, s *Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
