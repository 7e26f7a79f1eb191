package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// prune deletes the history of records that stopped being valid more than
// the retention ago, as a prefix of their chains whose end it keeps, so
// that verify still holds and a later event chains on; it keeps valid
// records and recent RETs. forget erases a recipient only where retention
// allows, and otherwise says until when.
func TestRetentionPrunesAndForgets(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	ctx := context.Background()
	const retention = 3 * 365 * 24 * time.Hour
	t0 := time.Now()
	soon := consent.NewDate(t0.Add(24 * time.Hour)).Time().In(consent.Istanbul).Format("02.01.2006 15:04:05")
	importRows(t, s, c.ID,
		sms(t, 1, "+905330000001", consent.StatusOnay, "15.05.2020 10:00:00"), // valid: kept
		sms(t, 2, "+905330000002", consent.StatusRet, "15.05.2020 10:00:00"),  // a RET of 2020
		sms(t, 3, "+905330000003", consent.StatusRet, soon))                   // a RET of tomorrow
	importRows(t, s, c.ID, sms(t, 1, "+905330000002", consent.StatusOnay, "14.05.2020 10:00:00")) // an older line: its event
	later := t0.Add(retention + time.Hour)
	countOf := func(recipient string) int {
		return count(t, s, `SELECT count(*) FROM consent_events e JOIN consents c ON c.id = e.consent_id WHERE c.recipient = $1`, recipient)
	}
	if countOf("+905330000002") != 2 {
		t.Fatalf("%d events of the RET of 2020, want 2", countOf("+905330000002"))
	}

	// Not yet past retention: nothing goes.
	if p, err := s.Prune(ctx, t0.Add(time.Hour), retention, false); err != nil || p != (Pruned{}) {
		t.Fatalf("prune now: %+v %v", p, err)
	}
	if p, err := s.Prune(ctx, later, retention, true); err != nil || p != (Pruned{Records: 1, Events: 2}) {
		t.Fatalf("prune --dry-run: %+v %v", p, err)
	}
	if countOf("+905330000002") != 2 {
		t.Fatal("the dry run deleted events")
	}
	if p, err := s.Prune(ctx, later, retention, false); err != nil || p != (Pruned{Records: 1, Events: 2}) {
		t.Fatalf("prune: %+v %v", p, err)
	}
	if countOf("+905330000002") != 0 || countOf("+905330000001") != 1 || countOf("+905330000003") != 1 {
		t.Fatalf("events left: %d %d %d", countOf("+905330000001"), countOf("+905330000002"), countOf("+905330000003"))
	}
	verified := func() {
		t.Helper()
		if v, err := s.VerifyChains(ctx, c.ID); err != nil || len(v.Broken) > 0 {
			t.Fatalf("verify: %+v %v", v, err)
		}
	}
	verified()
	// A later event chains on from where the chain was cut.
	importRows(t, s, c.ID, sms(t, 1, "+905330000002", consent.StatusRet, "15.05.2021 10:00:00"))
	if n := count(t, s, `SELECT min(seq) FROM consent_events e JOIN consents c ON c.id = e.consent_id WHERE c.recipient = $1`, "+905330000002"); n != 3 {
		t.Fatalf("the next event is %d, want 3", n)
	}
	verified()
	// The cut is evidence too: removed by hand, verify names the record.
	func() {
		tx, err := s.db.Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // nothing stays
		if _, err := tx.Exec(`DELETE FROM consent_event_cuts`); err != nil {
			t.Fatal(err)
		}
		if v, err := verifyChainsOn(ctx, tx, c.ID); err != nil || len(v.Broken) != 1 || v.Broken[0].Recipient != "+905330000002" {
			t.Fatalf("verify without the cut: %+v %v", v, err)
		}
	}()

	// forget: a valid consent is kept while it is; a recent RET until its end.
	// Its personal data elsewhere: an entry of the changes feed (as the
	// feed's trigger writes one), and quarantined feed entries that name it,
	// in İYS's writing; beside them another recipient's.
	feed := func(recipient string) {
		t.Helper()
		if _, err := s.db.Exec(`INSERT INTO changes (connector_id, consent_id, kind, recipient, recipient_type, type,
				status, consent_date, source, outcome)
			SELECT connector_id, id, 'from_iys', recipient, recipient_type, type, status, consent_date, source, 'from_iys'
			FROM consents WHERE recipient = $1`, recipient); err != nil {
			t.Fatal(err)
		}
	}
	feed("+905330000002")
	feed("+905330000003")
	if _, err := s.db.Exec(`INSERT INTO pull_quarantine (connector_id, source, raw, reason) VALUES
			($1, 'IYS', '{"recipient": "+905330000002", "status": "RETT"}', 'status'),
			($1, 'HS', '{"alici": "905330000002"}', 'recipient'),
			($1, 'IYS', '{"recipient": "+905330000003", "status": "RETT"}', 'status')`, c.ID); err != nil {
		t.Fatal(err)
	}
	quarantined := func(recipient string) int {
		return count(t, s, `SELECT count(*) FROM pull_quarantine WHERE strpos(raw, $1) > 0`, recipient)
	}

	var kept *KeptError
	if f, err := s.Forget(ctx, c.ID, "+905330000001", later, retention); !errors.As(err, &kept) || f != (Forgotten{}) || !kept.Until.IsZero() {
		t.Fatalf("forget a valid consent: %+v %v", f, err)
	}
	f, err := s.Forget(ctx, c.ID, "+905330000003", later, retention)
	if !errors.As(err, &kept) || f != (Forgotten{}) || kept.Until.Before(later) {
		t.Fatalf("forget a recent RET: %+v %v", f, err)
	}
	if countOf("+905330000003") != 1 || quarantined("905330000003") != 1 {
		t.Fatal("a refused forget erased events or quarantined entries")
	}
	f, err = s.Forget(ctx, c.ID, "+905330000002", later.Add(365*24*time.Hour), retention)
	if want := (Forgotten{Records: 1, Feed: 1, Quarantined: 2}); err != nil || f != want {
		t.Fatalf("forget a RET past retention: %+v %v, want %+v", f, err, want)
	}
	if left := count(t, s, `SELECT count(*) FROM consents WHERE recipient = $1`, "+905330000002") +
		countOf("+905330000002") + count(t, s, `SELECT count(*) FROM consent_event_cuts`) +
		count(t, s, `SELECT count(*) FROM changes WHERE recipient = $1`, "+905330000002") +
		quarantined("905330000002"); left != 0 {
		t.Fatalf("%d rows of the forgotten recipient left", left)
	}
	if n := count(t, s, `SELECT count(*) FROM changes WHERE recipient = $1`, "+905330000003") + quarantined("905330000003"); n != 2 {
		t.Fatalf("another recipient's feed entry and quarantined entry: %d left, want 2", n)
	}
	verified()
	if f, err := s.Forget(ctx, c.ID, "+905339999999", later, retention); err != nil || f != (Forgotten{}) {
		t.Fatalf("forget a recipient we never had: %+v %v", f, err)
	}
	if _, err := s.Forget(ctx, c.ID, "+", later, retention); err == nil {
		t.Fatal("forget of an empty recipient: no error")
	}
}
