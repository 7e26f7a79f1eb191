package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// everyPath drives the connector's records through every writer of
// consents: a file (new records, a newer line, an older line), the intake,
// the user-table source, a pull, a reconcile repair and resend, a refresh
// of a superseded record, the engine's claim, submission, sub-request,
// verdicts and recovery, and an operator's redrive.
func everyPath(t *testing.T, s *Store, c Connector) {
	t.Helper()
	ctx := context.Background()
	rows := phones(t, 6)
	importRows(t, s, c.ID, rows...)
	// A newer line for record 0 and an older one for record 1.
	importRows(t, s, c.ID, sms(t, 1, rows[0].Recipient, consent.StatusRet, "16.05.2025 10:00:00"),
		sms(t, 2, rows[1].Recipient, consent.StatusRet, "01.05.2025 10:00:00"))
	// The intake: a newer item for record 2, a new record.
	items := []ImportRow{sms(t, 1, rows[2].Recipient, consent.StatusRet, "16.05.2025 11:00:00"),
		sms(t, 2, "+905339999999", consent.StatusOnay, "16.05.2025 11:00:00")}
	if _, err := s.ImportItems(ctx, c.ID, "api:crm", "req-7", items, []IntakeChannel{{Channel: "sms", Valid: 2}}); err != nil {
		t.Fatal(err)
	}
	// The user-table source: a newer consent of record 3.
	src := sms(t, 1, rows[3].Recipient, consent.StatusRet, "16.05.2025 12:00:00")
	src.ExternalID = "u-3"
	if _, err := s.ImportSource(ctx, c.ID, "source:B", func() []IntakeChannel {
		return []IntakeChannel{{Channel: "sms", Valid: 1}}
	}, fromSlice(src)); err != nil {
		t.Fatal(err)
	}
	// The engine: a batch of 3 sent whole, one of 3 split into a sub-request.
	run := startRun(t, s, c.ID)
	b1, recs := claim(t, s, c.ID, run, 3)
	ids, subs := make([]int64, len(recs)), make([]string, len(recs))
	for i, r := range recs {
		ids[i], subs[i] = r.ID, fmt.Sprintf("sub-%d", i)
	}
	if err := s.SaveSubmission(ctx, b1, "REQ-1", ids, subs); err != nil {
		t.Fatal(err)
	}
	vs := []consent.Verdict{
		{ID: recs[0].ID, Version: recs[0].Version, State: consent.StateSynced, Outcome: consent.OutcomeAccepted, TransactionID: "TX-1", Tried: true},
		{ID: recs[1].ID, Version: recs[1].Version, State: consent.StateRejected, Outcome: consent.OutcomeSuperseded, Code: "H178", Message: "newer in İYS", Tried: true},
		{ID: recs[2].ID, Version: recs[2].Version, State: consent.StatePending, Code: "H500", Message: "later", Tried: true},
	}
	if _, err := s.FinishBatch(ctx, run, b1, 3, consent.BatchDone, vs); err != nil {
		t.Fatal(err)
	}
	b2, recs2 := claim(t, s, c.ID, run, 3)
	if len(recs2) < 2 {
		t.Fatalf("second claim: %d records", len(recs2))
	}
	if _, err := s.SaveSubRequest(ctx, b2, "REQ-2", []int64{recs2[0].ID}, []string{"sub-a"}); err != nil {
		t.Fatal(err)
	}
	// The rest of b2 was never sent: recovery releases it, without events.
	if _, _, err := s.RecoverBatches(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	// The superseded record is refreshed from İYS.
	sup, err := s.SupersededRecords(ctx, c.ID, 10)
	if err != nil || len(sup) != 1 {
		t.Fatalf("superseded: %v %v", sup, err)
	}
	if ok, err := s.ReplaceFromIYS(ctx, sup[0].ID, sup[0].Version, Change{Status: consent.StatusRet,
		ConsentDate: date(t, "18.05.2025 09:00:00"), Source: "IYS_ARAMA", TransactionID: "TX-R"}); err != nil || !ok {
		t.Fatalf("refresh: %v %v", ok, err)
	}
	// İYS's changes feed: a citizen's RET for record 4, newer; an older one for record 5.
	page := FeedPage{Source: "IYS", Changes: []Change{
		{Recipient: rows[4].Recipient, RecipientType: consent.Bireysel, Type: consent.TypeMesaj, Status: consent.StatusRet,
			ConsentDate: date(t, "19.05.2025 09:00:00"), Source: "IYS_MOBIL", TransactionID: "TX-P", CreationDate: date(t, "17.05.2025 09:00:05")},
		{Recipient: rows[5].Recipient, RecipientType: consent.Bireysel, Type: consent.TypeMesaj, Status: consent.StatusRet,
			ConsentDate: date(t, "01.01.2025 09:00:00"), Source: "IYS_WEB", TransactionID: "TX-OLD"},
	}}
	if _, err := s.ApplyChanges(ctx, c.ID, page); err != nil {
		t.Fatal(err)
	}
	// Reconcile: a record missing here, and the synced record requeued.
	if _, err := s.ApplyReconciled(ctx, c.ID, []Change{{Recipient: "+905338888888", RecipientType: consent.Bireysel,
		Type: consent.TypeMesaj, Status: consent.StatusOnay, ConsentDate: date(t, "10.05.2025 09:00:00"),
		Source: "HS_WEB", TransactionID: "TX-D"}}); err != nil {
		t.Fatal(err)
	}
	synced := records(t, s, c.ID)[recs[0].Consent.Recipient+"/MESAJ"]
	if n, err := s.Resend(ctx, c.ID, []RecordVersion{{ID: synced.ID, Version: synced.Version}}); err != nil || n != 1 {
		t.Fatalf("resend: %d %v", n, err)
	}
	// A record İYS refuses as invalid, then an operator's redrive of it (its
	// version bumped).
	b3, recs3 := claim(t, s, c.ID, run, 1)
	if _, err := s.FinishBatch(ctx, run, b3, 1, consent.BatchDone, []consent.Verdict{{ID: recs3[0].ID, Version: recs3[0].Version,
		State: consent.StateRejected, Outcome: consent.OutcomeInvalid, Code: "H101", Message: "invalid", Tried: true}}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Redrive(ctx, c.ID, RedriveFilter{Outcomes: []consent.Outcome{consent.OutcomeInvalid}}, "ops", false); err != nil || r.Matched != 1 {
		t.Fatalf("redrive: %+v %v", r, err)
	}
}

// No path writes a change without its event: every record has one value
// event per version, its head names its last event, and the chains hold.
func TestEveryChangeHasItsEvent(t *testing.T) {
	bothMerges(t, func(t *testing.T, s *Store) {
		c := install(t, s, "B")
		everyPath(t, s, c)
		var bad []string
		err := s.db.Select(&bad, `
			SELECT c.recipient || ': version ' || c.version || ', ' || count(e.*) FILTER (WHERE e.kind = ANY($2) AND e.outcome IS DISTINCT FROM 'superseded') ||
			       ' value events; head ' || c.event_seq || ', ' || count(e.*) || ' events'
			FROM consents c LEFT JOIN consent_events e ON e.consent_id = c.id
			WHERE c.connector_id = $1
			GROUP BY c.id
			HAVING c.version <> count(e.*) FILTER (WHERE e.kind = ANY($2) AND e.outcome IS DISTINCT FROM 'superseded')
			    OR c.event_seq <> count(e.*)`,
			c.ID, pq.Array(ValueKinds))
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Fatalf("records whose events do not match their versions:\n%s", strings.Join(bad, "\n"))
		}
		// The older line has its event, which changed nothing.
		var lost Event
		if err := s.db.Get(&lost, `SELECT e.* FROM consent_events e JOIN consents c ON c.id = e.consent_id
		                           WHERE c.recipient = $1 AND e.outcome = 'superseded'`, "+905330000001"); err != nil {
			t.Fatal(err)
		}
		if lost.Kind != EventFile || lost.Origin != "file:test.txt:2" || lost.Status != "RET" || lost.Version != 1 || !lost.ImportID.Valid {
			t.Fatalf("the older line's event = %+v", lost)
		}
		// Each kind of path wrote its events.
		var kinds []string
		if err := s.db.Select(&kinds, `SELECT DISTINCT kind FROM consent_events ORDER BY kind`); err != nil {
			t.Fatal(err)
		}
		want := "api file iys reconcile redrive refresh requeued sent source verdict"
		if got := strings.Join(kinds, " "); got != want {
			t.Fatalf("kinds of events = %s, want %s", got, want)
		}
		v, err := s.VerifyChains(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Broken) > 0 || v.Records != 8 || v.Events != count(t, s, "SELECT count(*) FROM consent_events") {
			t.Fatalf("verify = %+v, want 8 records, every event, none broken", v)
		}
	})
}

// verify names the record whose history was edited, deleted or added to by
// hand, and only that one; an untouched database passes.
func TestVerifyNamesTamperedRecords(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	everyPath(t, s, c)
	ctx := context.Background()
	if v, err := s.VerifyChains(ctx, c.ID); err != nil || len(v.Broken) > 0 {
		t.Fatalf("untouched: %+v %v", v, err)
	}
	// A record with at least three events: one in the middle, and its last.
	var id int64
	var last int
	if err := s.db.QueryRow(`SELECT consent_id, max(seq) FROM consent_events GROUP BY consent_id
	                         HAVING max(seq) >= 3 ORDER BY consent_id LIMIT 1`).Scan(&id, &last); err != nil {
		t.Fatal(err)
	}
	// Each tamper runs in a transaction rolled back after verify looked:
	// the append-only trigger is lifted as a hand in psql would.
	tamper := func(name, q string, check func(b Broken) bool) {
		t.Run(name, func(t *testing.T) {
			tx, err := s.db.Beginx()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() //nolint:errcheck // the point: nothing stays
			if _, err := tx.Exec(`SET LOCAL iys_sync.prune = 'on'`); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(q, id, last); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			v, err := verifyChainsOn(context.Background(), tx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Broken) != 1 || v.Broken[0].ID != id || !check(v.Broken[0]) {
				t.Fatalf("verify after %s: %+v, want record %d alone", name, v.Broken, id)
			}
		})
	}
	tamper("an event edited", `UPDATE consent_events SET status = CASE status WHEN 'ONAY' THEN 'RET' ELSE 'ONAY' END
	                            WHERE consent_id = $1 AND seq = $2 - 1`,
		func(b Broken) bool { return b.FirstBad == last-1 && b.FirstGap == 0 })
	tamper("an origin edited", `UPDATE consent_events SET origin = 'file:other.csv:1' WHERE consent_id = $1 AND seq = 1 AND $2 > 0`,
		func(b Broken) bool { return b.FirstBad == 1 })
	tamper("an event deleted", `DELETE FROM consent_events WHERE consent_id = $1 AND seq = $2 - 1`,
		func(b Broken) bool { return b.FirstGap == last })
	tamper("the last event deleted", `DELETE FROM consent_events WHERE consent_id = $1 AND seq = $2`,
		func(b Broken) bool { return b.FirstBad == 0 && b.HeadSeq == last && b.LastSeq == last-1 })
	tamper("an event inserted", `INSERT INTO consent_events
	        SELECT consent_id, seq + 1, at + interval '1 second', kind, origin, 'ONAY', consent_date, source, recipient_type,
	               external_id, version, state, import_id, request_id, subrequest_id, transaction_id, creation_date,
	               outcome, iys_code, iys_message, hash
	        FROM consent_events WHERE consent_id = $1 AND seq = $2`,
		func(b Broken) bool { return b.FirstBad == last+1 && b.LastSeq == last+1 })
	tamper("a record changed without an event", `UPDATE consents SET status = CASE status WHEN 'ONAY' THEN 'RET' ELSE 'ONAY' END
	                            WHERE id = $1 AND $2 > 0`,
		func(b Broken) bool { return !b.ValueOK && b.FirstBad == 0 && b.HeadOK })
}

// Events are append-only: an UPDATE or DELETE outside retention is refused.
func TestEventsAreAppendOnly(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 1)...)
	for _, q := range []string{`UPDATE consent_events SET status = 'RET'`, `DELETE FROM consent_events`, `TRUNCATE consent_events`} {
		if _, err := s.db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want it refused", q, err)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM consent_events"); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// eventHash (Go) and consent_event_hash (SQL) agree byte for byte: on the
// fields a file or intake row stages, and on every field set, NULLs, a
// previous hash, non-ASCII text and times with microseconds.
func TestEventHashMatchesSQL(t *testing.T) {
	s, _ := newStore(t)
	at := time.Date(2026, 11, 30, 2, 31, 17, 123456000, time.UTC)
	id, req, txn, msg := int64(42), "req-7", "TX-ğüş", "İYS: çok yeni\x1fkayıt"
	created := time.Date(2025, 5, 15, 15, 0, 1, 0, consent.Istanbul)
	prev := []byte("0123456789abcdef0123456789abcdef")
	cases := []struct {
		prev []byte
		f    eventFields
	}{
		{nil, eventFields{seq: 1, at: at, kind: "file", origin: "file:sms.txt:3", status: "ONAY",
			consentDate: date(t, "15.05.2025 14:23:00").Time(), source: "HS_WEB", recipientType: "BIREYSEL",
			version: 1, state: "pending", importID: &id}},
		{prev, eventFields{seq: 7, at: at, kind: "verdict", origin: "api:crm:0", status: "RET",
			consentDate: date(t, "01.01.2015 00:00:00").Time(), source: "IYS_MOBIL", recipientType: "TACIR",
			externalID: "müşteri-1", version: 3, state: "rejected", requestID: &req, subrequestID: &req,
			transactionID: &txn, creationDate: &created, outcome: &txn, iysCode: &req, iysMessage: &msg}},
	}
	for i, c := range cases {
		f := c.f
		var got []byte
		err := s.db.QueryRow(`SELECT consent_event_hash($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
		                                                $15, $16, $17, $18, $19, $20)`,
			c.prev, f.seq, f.at, f.kind, f.origin, f.status, f.consentDate, f.source, f.recipientType, f.externalID,
			f.version, f.state, f.importID, f.requestID, f.subrequestID, f.transactionID, f.creationDate, f.outcome,
			f.iysCode, f.iysMessage).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		if want := eventHash(c.prev, f); !bytes.Equal(got, want) {
			t.Errorf("case %d: SQL %x, Go %x", i, got, want)
		}
	}
}

// consent_events takes every kind the code writes, and no other.
func TestEveryEventKindIsAccepted(t *testing.T) {
	s, _ := newStore(t)
	insert := func(kind string) error {
		tx, err := s.db.Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // nothing stays
		_, err = tx.Exec(`INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source,
				recipient_type, external_id, version, state, hash)
			VALUES (1, 1, now(), $1, 'test', 'ONAY', now(), 'HS_WEB', 'BIREYSEL', '', 1, 'pending', '\x00')`, kind)
		return err
	}
	for _, kind := range EventKinds {
		if err := insert(kind); err != nil {
			t.Errorf("kind %q refused: %v", kind, err)
		}
	}
	for _, kind := range []string{"files", "", "FILE"} {
		if err := insert(kind); pq.As(err, pqerror.CheckViolation) == nil {
			t.Errorf("kind %q: %v, want a check violation", kind, err)
		}
	}
}
