package store

import (
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A bulk request carrying some of a claimed batch's records becomes a
// submitted batch of its own; after a crash, recovery polls it and hands
// back what the first batch still holds.
func TestSaveSubRequestAndRecover(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 5)...)
	run := startRun(t, s, c.ID)
	ctx := context.Background()
	b, recs := claim(t, s, c.ID, run, 5)
	child1, err := s.SaveSubRequest(ctx, b, "req-2", []int64{recs[1].ID, recs[3].ID}, []string{"s-1", "s-3"})
	if err != nil {
		t.Fatal(err)
	}
	child2, err := s.SaveSubRequest(ctx, b, "req-3", []int64{recs[4].ID}, []string{"s-4"})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM batches WHERE id = $1 AND state = 'submitted' AND request_id = 'req-2'
		AND size = 2 AND run_id = $2 AND connector_id = $3 AND submitted_at IS NOT NULL`, child1, run, c.ID); n != 1 {
		t.Fatal("the first sub-request is not a submitted batch of 2 of the same run")
	}
	if n := count(t, s, `SELECT count(*) FROM consents WHERE batch_id = $1 AND state = 'in_flight'`, child1); n != 2 {
		t.Fatalf("%d records moved to the sub-request's batch, want 2", n)
	}
	if n := count(t, s, `SELECT count(*) FROM batches WHERE id = $1 AND state = 'claimed'`, b); n != 1 {
		t.Fatal("the first batch is no longer claimed")
	}
	if _, err := s.SaveSubRequest(ctx, b, "req-4", []int64{recs[0].ID, 999999}, []string{"s-0", "s-x"}); err == nil {
		t.Fatal("a record of no batch was saved")
	}
	if _, err := s.SaveSubRequest(ctx, child1, "req-5", []int64{recs[1].ID}, []string{"s-1"}); !errors.Is(err, ErrBatchMoved) {
		t.Fatalf("a sub-request of a submitted batch: %v, want ErrBatchMoved", err)
	}

	released, submitted, err := s.RecoverBatches(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if released != 2 {
		t.Fatalf("released %d, want the 2 records the first batch still held", released)
	}
	sort.Slice(submitted, func(i, j int) bool { return submitted[i].ID < submitted[j].ID })
	if len(submitted) != 2 || submitted[0].ID != child1 || submitted[0].RequestID != "req-2" || len(submitted[0].Items) != 2 ||
		submitted[1].ID != child2 || submitted[1].RequestID != "req-3" || len(submitted[1].Items) != 1 {
		t.Fatalf("submitted = %+v, want both sub-requests", submitted)
	}
	it := submitted[0].Items
	if it[0].ID != recs[1].ID || it[0].SubrequestID != "s-1" || it[0].Version != 1 || it[1].SubrequestID != "s-3" {
		t.Fatalf("items = %+v", it)
	}
	if n := count(t, s, `SELECT count(*) FROM consents WHERE state = 'pending'`); n != 2 {
		t.Fatalf("%d pending, want the 2 handed back", n)
	}
	tally, err := s.FinishBatch(ctx, run, child1, 2, consent.BatchDone, []consent.Verdict{
		{ID: recs[1].ID, Version: 1, State: consent.StateSynced, Outcome: consent.OutcomeAccepted, Tried: true},
		{ID: recs[3].ID, Version: 1, State: consent.StateRejected, Outcome: consent.OutcomeInvalid, Code: "H121", Tried: true},
	})
	if err != nil || tally.Accepted != 1 || tally.Rejected != 1 || tally.Stale != 0 {
		t.Fatalf("finishing the sub-request's batch: %+v, %v", tally, err)
	}
}
