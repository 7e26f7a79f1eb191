package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	gosync "sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// phones gives n SMS rows, one minute apart from 10:00, oldest first.
func phones(t testing.TB, n int) []ImportRow {
	rows := make([]ImportRow, n)
	for i := range rows {
		rows[i] = sms(t, i+1, fmt.Sprintf("+9053300%05d", i), consent.StatusOnay,
			fmt.Sprintf("15.05.2025 %02d:%02d:00", 10+i/60, i%60))
	}
	return rows
}

// startRun starts a run of the connector for tests.
func startRun(t testing.TB, s *Store, connectorID int64) int64 {
	t.Helper()
	id, err := s.StartRun(context.Background(), connectorID, consent.TriggerRunNow)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func claim(t testing.TB, s *Store, connectorID, runID int64, n int) (int64, []consent.Record) {
	t.Helper()
	id, recs, err := s.ClaimBatch(context.Background(), connectorID, runID, n, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id, recs
}

func TestClaimBatchTakesOldestDueAndRecordsItems(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	rows := phones(t, 5)
	// Line order is not date order: the claim goes by consent date.
	rows[0], rows[4] = rows[4], rows[0]
	rows[0].Line, rows[4].Line = 1, 5
	importRows(t, s, c.ID, rows...)
	run := startRun(t, s, c.ID)
	// One record is waiting for a retry: not due, not claimed.
	execSQL(t, s, `UPDATE consents SET next_attempt_at = now() + interval '1 hour' WHERE recipient = $1`, "+905330000001")

	b1, recs := claim(t, s, c.ID, run, 3)
	if b1 == 0 || len(recs) != 3 {
		t.Fatalf("claim = batch %d, %d records; want a batch of 3", b1, len(recs))
	}
	want := []string{"+905330000000", "+905330000002", "+905330000003"}
	for i, r := range recs {
		if r.Consent.Recipient != want[i] || r.Version != 1 || r.ConnectorID != c.ID || r.Consent.Type != consent.TypeMesaj {
			t.Fatalf("record %d = %+v, want %s at version 1, oldest first", i, r, want[i])
		}
	}
	if n := count(t, s, `SELECT count(*) FROM consents WHERE state = 'in_flight' AND batch_id = $1`, b1); n != 3 {
		t.Fatalf("%d records in flight in the batch, want 3", n)
	}
	if n := count(t, s, `SELECT count(*) FROM batch_items WHERE batch_id = $1 AND version = 1 AND subrequest_id IS NULL`, b1); n != 3 {
		t.Fatalf("%d items, want 3", n)
	}
	if n := count(t, s, `SELECT count(*) FROM batches WHERE id = $1 AND state = 'claimed' AND size = 3 AND run_id = $2`, b1, run); n != 1 {
		t.Fatal("the batch row is not claimed with size 3")
	}
	b2, recs := claim(t, s, c.ID, run, 3)
	if len(recs) != 1 || recs[0].Consent.Recipient != "+905330000004" || b2 == b1 {
		t.Fatalf("second claim = %+v, want the one due record left", recs)
	}
	if b3, recs := claim(t, s, c.ID, run, 3); b3 != 0 || len(recs) != 0 {
		t.Fatalf("third claim = batch %d with %d records, want nothing", b3, len(recs))
	}
	if n := count(t, s, `SELECT count(*) FROM batches`); n != 2 {
		t.Fatalf("%d batches, want 2: an empty claim makes no batch", n)
	}
	if _, _, err := s.ClaimBatch(context.Background(), c.ID, run, 1001, time.Now()); err == nil {
		t.Fatal("a batch of 1001 was claimed")
	}
}

// TestConcurrentClaimsNeverShareARecord: claims racing on one connector
// (workers, replicas) take disjoint records and, together, all of them.
func TestConcurrentClaimsNeverShareARecord(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 300)...)
	run := startRun(t, s, c.ID)
	var mu gosync.Mutex
	seen := map[int64]int{}
	var wg gosync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, recs, err := s.ClaimBatch(context.Background(), c.ID, run, 7, time.Now())
				if err != nil {
					errs <- err
					return
				}
				if len(recs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range recs {
					seen[r.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != 300 {
		t.Fatalf("%d records claimed, want 300", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("record %d claimed %d times", id, n)
		}
	}
}

func TestFinishBatchWritesVerdictsGuardedByVersion(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	rows := phones(t, 5)
	importRows(t, s, c.ID, rows...)
	run := startRun(t, s, c.ID)
	b, recs := claim(t, s, c.ID, run, 5)

	// A newer consent for record 0 arrives while the batch is in flight.
	newer := sms(t, 1, rows[0].Recipient, consent.StatusRet, "15.05.2025 18:00:00")
	importRows(t, s, c.ID, newer)

	v := func(i int, st consent.State, o consent.Outcome) consent.Verdict {
		return consent.Verdict{ID: recs[i].ID, Version: recs[i].Version, State: st, Outcome: o, Tried: true}
	}
	vs := []consent.Verdict{
		v(0, consent.StateSynced, consent.OutcomeAccepted),
		v(1, consent.StateSynced, consent.OutcomeAlreadyInIYS),
		v(2, consent.StateRejected, consent.OutcomeNoPriorRecord),
		v(3, consent.StatePending, ""),
		v(4, consent.StateFailed, ""),
	}
	vs[0].TransactionID, vs[1].TransactionID = "tx-0", ""
	vs[1].Code, vs[1].Message = consent.CodeSameStatus, "already there"
	vs[2].Code, vs[2].Message = consent.CodeFirstIsRet, "first cannot be RET"
	vs[3].Code, vs[3].Message, vs[3].RetryIn = consent.CodeBusy, "busy", time.Hour
	vs[4].Code, vs[4].Message = "", "HTTP 503"
	tally, err := s.FinishBatch(context.Background(), run, b, 5, consent.BatchDone, vs)
	if err != nil {
		t.Fatal(err)
	}
	want := consent.Tally{Sent: 5, Accepted: 1, Rejected: 1, Retried: 1, Failed: 1, Stale: 1,
		Outcomes: map[consent.Outcome]int{consent.OutcomeAlreadyInIYS: 1, consent.OutcomeNoPriorRecord: 1}}
	if fmt.Sprint(tally) != fmt.Sprint(want) {
		t.Fatalf("tally = %+v, want %+v", tally, want)
	}
	recsNow := records(t, s, c.ID)
	r0 := recsNow[rows[0].Recipient+"/MESAJ"]
	if r0.State != consent.StatePending || r0.Version != 2 || r0.Outcome.Valid || r0.Status != consent.StatusRet {
		t.Fatalf("record 0 = %+v: the old result overwrote the newer consent", r0)
	}
	r1 := recsNow[rows[1].Recipient+"/MESAJ"]
	if r1.State != consent.StateSynced || r1.Outcome.V != consent.OutcomeAlreadyInIYS || r1.IYSCode.String != "H174" ||
		r1.Attempts != 1 || !r1.SyncedAt.Valid || r1.TransactionID.Valid {
		t.Fatalf("record 1 = %+v", r1)
	}
	r2 := recsNow[rows[2].Recipient+"/MESAJ"]
	if r2.State != consent.StateRejected || r2.Outcome.V != consent.OutcomeNoPriorRecord || r2.IYSMessage.String != "first cannot be RET" {
		t.Fatalf("record 2 = %+v", r2)
	}
	r3 := recsNow[rows[3].Recipient+"/MESAJ"]
	if r3.State != consent.StatePending || r3.Outcome.Valid || r3.Attempts != 1 || r3.IYSCode.String != "H123" ||
		time.Until(r3.NextAttemptAt) < 50*time.Minute {
		t.Fatalf("record 3 = %+v, want pending again, an hour from now", r3)
	}
	r4 := recsNow[rows[4].Recipient+"/MESAJ"]
	if r4.State != consent.StateFailed || r4.Outcome.Valid || r4.IYSCode.Valid || r4.IYSMessage.String != "HTTP 503" {
		t.Fatalf("record 4 = %+v", r4)
	}
	if n := count(t, s, `SELECT count(*) FROM batches WHERE id = $1 AND state = 'done' AND finished_at IS NOT NULL`, b); n != 1 {
		t.Fatal("the batch is not done")
	}
	run1, err := s.RunByID(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	if run1.Sent != 5 || run1.Accepted != 1 || run1.Rejected != 1 || run1.Retried != 1 || run1.Failed != 1 {
		t.Fatalf("run counters = %+v", run1)
	}
	// A batch is finished once.
	if _, err := s.FinishBatch(context.Background(), run, b, 0, consent.BatchDone, nil); !errors.Is(err, ErrBatchMoved) {
		t.Fatalf("finishing a done batch again: %v, want ErrBatchMoved", err)
	}
}

func TestFinishBatchRefusesAVerdictAgainstTheContract(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 2)...)
	run := startRun(t, s, c.ID)
	b, recs := claim(t, s, c.ID, run, 2)
	bad := [][]consent.Verdict{
		{{ID: recs[0].ID, Version: 1, State: consent.StateSynced, Outcome: consent.OutcomeTooOld}},
		{{ID: recs[0].ID, Version: 1, State: consent.StatePending, Outcome: consent.OutcomeAccepted}},
		{{ID: recs[0].ID, Version: 1, State: consent.StateInFlight}},
		{{ID: recs[0].ID, Version: 1, State: consent.StateFailed}, {ID: recs[0].ID, Version: 1, State: consent.StateFailed}},
	}
	for i, vs := range bad {
		if _, err := s.FinishBatch(context.Background(), run, b, 0, consent.BatchDone, vs); err == nil {
			t.Errorf("verdicts %d were accepted: %+v", i, vs)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM consents WHERE state = 'in_flight'`); n != 2 {
		t.Fatalf("%d records in flight, want 2: a refused finish wrote something", n)
	}
}

func TestSaveSubmissionAndRecoverBatches(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 6)...)
	run := startRun(t, s, c.ID)
	ctx := context.Background()
	b1, recs1 := claim(t, s, c.ID, run, 3)
	b2, recs2 := claim(t, s, c.ID, run, 3)
	// b1 reached İYS, its third record held back by the pre-check; b2 did not.
	if err := s.SaveSubmission(ctx, b1, "req-1", []int64{recs1[0].ID, recs1[1].ID}, []string{"s-a", "s-b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSubmission(ctx, b1, "req-1", []int64{recs1[0].ID}, []string{"s-a"}); !errors.Is(err, ErrBatchMoved) {
		t.Fatalf("saving twice: %v, want ErrBatchMoved", err)
	}
	if err := s.SaveSubmission(ctx, b2, "req-2", []int64{recs1[0].ID}, []string{"s-x"}); err == nil {
		t.Fatal("a record of another batch was saved as an item")
	}
	execSQL(t, s, `UPDATE consents SET attempts = 2 WHERE id = $1`, recs1[0].ID)

	released, submitted, err := s.RecoverBatches(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if released != 3 {
		t.Fatalf("released %d records, want b2's 3", released)
	}
	for _, r := range recs2 {
		var st string
		var attempts int
		if err := s.db.QueryRow(`SELECT state, attempts FROM consents WHERE id = $1`, r.ID).Scan(&st, &attempts); err != nil {
			t.Fatal(err)
		}
		if st != "pending" || attempts != 0 {
			t.Fatalf("record of the claimed batch: %s with %d attempts, want pending with 0", st, attempts)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM batches WHERE id = $1 AND state = 'released'`, b2); n != 1 {
		t.Fatal("the claimed batch is not released")
	}
	if len(submitted) != 1 || submitted[0].ID != b1 || submitted[0].RequestID != "req-1" || len(submitted[0].Items) != 3 {
		t.Fatalf("submitted = %+v, want b1 with its 3 items", submitted)
	}
	items := submitted[0].Items
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	if items[0].SubrequestID != "s-a" || items[1].SubrequestID != "s-b" || items[2].SubrequestID != "" ||
		items[0].Attempts != 2 || items[0].Version != 1 || items[0].Consent.Recipient != recs1[0].Consent.Recipient {
		t.Fatalf("items = %+v", items)
	}
	bl, err := s.Backlog(ctx, c.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if bl.Pending != 3 || bl.InFlight != 3 || bl.NextDueIn > 0 {
		t.Fatalf("backlog = %+v, want 3 pending due now and 3 in flight", bl)
	}
	execSQL(t, s, `UPDATE consents SET next_attempt_at = now() + interval '90 seconds' WHERE state = 'pending'`)
	if bl, _ = s.Backlog(ctx, c.ID, time.Now()); bl.NextDueIn < 80*time.Second || bl.NextDueIn > 90*time.Second {
		t.Fatalf("backlog = %+v, want the next due in about 90s", bl)
	}
}

// A run's claims go on from where its last one ended (consent.ClaimPos): a
// record due behind that position waits for a claim from the start.
func TestClaimBatchAfterGoesOnFromItsPosition(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	c := install(t, s, "B")
	var rows []ImportRow
	for i := 1; i <= 6; i++ {
		rows = append(rows, sms(t, i, fmt.Sprintf("+9053310000%02d", 7-i), consent.StatusOnay,
			fmt.Sprintf("15.05.2025 14:0%d:00", i)))
	}
	importRows(t, s, c.ID, rows...)
	run := startRun(t, s, c.ID)
	claim := func(pos consent.ClaimPos) ([]string, consent.ClaimPos) {
		t.Helper()
		_, recs, err := s.ClaimBatchAfter(ctx, c.ID, run, 2, time.Now(), pos)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.Consent.ConsentDate.String()[11:16])
			pos = consent.ClaimPos{ConsentDate: r.Consent.ConsentDate.Time(), ID: r.ID}
		}
		return got, pos
	}
	got, pos := claim(consent.ClaimPos{})
	if fmt.Sprint(got) != "[14:01 14:02]" {
		t.Fatalf("first claim: %v, want the two oldest", got)
	}
	if got, pos = claim(pos); fmt.Sprint(got) != "[14:03 14:04]" {
		t.Fatalf("second claim: %v, want the next two", got)
	}
	// The oldest comes back to pending (as a retry would): the claims after
	// the position do not see it, a claim from the start does.
	execSQL(t, s, `UPDATE consents SET state = 'pending', batch_id = NULL WHERE connector_id = $1 AND consent_date = (SELECT min(consent_date) FROM consents WHERE connector_id = $1)`, c.ID)
	if got, pos = claim(pos); fmt.Sprint(got) != "[14:05 14:06]" {
		t.Fatalf("third claim: %v, want the last two", got)
	}
	if got, _ = claim(pos); len(got) != 0 {
		t.Fatalf("after the last: %v, want none", got)
	}
	if got, _ = claim(consent.ClaimPos{}); fmt.Sprint(got) != "[14:01]" {
		t.Fatalf("from the start: %v, want the one due again", got)
	}
}

// TestRecordsNameOnlyBatchesThatExist: what the foreign key consents_batch
// checked, its triggers check (0018_batch_checked_where_set.sql): a claim
// sets a batch that exists; an update or an insert that names a missing one
// fails as a foreign key would; clearing a batch, or keeping it, is free.
func TestRecordsNameOnlyBatchesThatExist(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 2)...)
	b, recs := claim(t, s, c.ID, startRun(t, s, c.ID), 1)
	if b == 0 || len(recs) != 1 {
		t.Fatalf("claim: batch %d, %d records", b, len(recs))
	}
	ctx := context.Background()
	fk := func(what string, err error) {
		t.Helper()
		if pq.As(err, pqerror.ForeignKeyViolation) == nil {
			t.Errorf("%s: %v, want a foreign key violation", what, err)
		}
	}
	_, err := s.db.ExecContext(ctx, `UPDATE consents SET batch_id = $1 WHERE connector_id = $2 AND batch_id IS NULL`, b+1000, c.ID)
	fk("a missing batch set", err)
	_, err = s.db.ExecContext(ctx, `INSERT INTO consents (connector_id, recipient, recipient_type, type, status, consent_date, source, batch_id)
		VALUES ($1, '+905339999999', 'BIREYSEL', 'MESAJ', 'ONAY', now(), 'HS_WEB', $2)`, c.ID, b+1000)
	fk("a record inserted with a missing batch", err)
	execSQL(t, s, `UPDATE consents SET batch_id = $1 WHERE connector_id = $2 AND batch_id IS NULL`, b, c.ID)
	execSQL(t, s, `UPDATE consents SET batch_id = batch_id, attempts = attempts + 1 WHERE connector_id = $1`, c.ID)
	if n := count(t, s, `SELECT count(*) FROM consents WHERE batch_id = $1`, b); n != 2 {
		t.Fatalf("%d records name the batch, want 2", n)
	}
}
