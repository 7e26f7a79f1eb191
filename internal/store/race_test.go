package store

import (
	"context"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// TestImportRacesAnInsert: a record the import believes new is inserted by
// another transaction before the import writes it. The fast path then hits
// consents_key, and the import must fall back to the upsert and succeed,
// newest consent winning.
func TestImportRacesAnInsert(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	ctx := context.Background()

	other, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback() //nolint:errcheck
	// Counted, as every insert of consents counts itself (0014).
	if _, err := other.Exec(`WITH ins AS (
			INSERT INTO consents (connector_id, recipient, recipient_type, type, status, consent_date, source)
			VALUES ($1, $2, 'BIREYSEL', 'MESAJ', 'ONAY', '2025-05-15 10:00:00+03', 'HS_WEB')
			RETURNING connector_id, state, outcome, source, consent_date)
		INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
		SELECT connector_id, state, outcome, consent_pending_day(state, source, consent_date), 1 FROM ins`,
		c.ID, phoneA); err != nil {
		t.Fatal(err)
	}

	type result struct {
		res ImportResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		rows := []ImportRow{
			sms(t, 1, phoneA, consent.StatusRet, "15.05.2025 14:00:00"), // newer than the other's
			sms(t, 2, phoneB, consent.StatusOnay, "15.05.2025 14:00:00"),
		}
		res, err := s.ImportFile(ctx, c.ID, fixed(metaFor(rows...)), fromSlice(rows...), nil)
		done <- result{res, err}
	}()
	// The import's INSERT now waits on the other transaction's key.
	waitFor(t, "the import to wait on the other insert", func() bool {
		return count(t, s, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%WITH staged%'`) == 1
	})
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("import lost the race: %v", r.err)
	}
	if want := (ImportResult{Rows: 2, Inserted: 1, Updated: 1}); r.res != want {
		t.Fatalf("import = %+v, want %+v", r.res, want)
	}
	recs := records(t, s, c.ID)
	if a := recs[phoneA+"/MESAJ"]; a.Status != consent.StatusRet || a.Version != 2 {
		t.Fatalf("record A = %+v, want the import's newer RET at version 2", a)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
}
