package store

import (
	"context"
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
	return s, url
}

// bothMerges runs fn on a fresh store once per merge path: the fast one
// (plain INSERT of new records) and the upsert-only fallback.
func bothMerges(t *testing.T, fn func(t *testing.T, s *Store)) {
	for _, upsertOnly := range []bool{false, true} {
		name := "fast"
		if upsertOnly {
			name = "upsert-only"
		}
		t.Run(name, func(t *testing.T) {
			s, _ := newStore(t)
			s.upsertOnly = upsertOnly
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
	res, err := s.ImportFile(context.Background(), connectorID, fixed(metaFor(rows...)), fromSlice(rows...))
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
