package store

import (
	"context"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A record dated after the engine's clock, within consent.MaxAhead, waits
// for its date: not claimed, counted as not yet due, and the backlog says
// when it comes due. One dated further ahead is claimed at once, for the
// pre-check to refuse.
func TestClaimWaitsForEarlyDates(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	rows := phones(t, 5) // 10:00 to 10:04 on 15 May 2025
	far := sms(t, 6, "+905339999999", consent.StatusOnay, "15.05.2025 10:30:00")
	importRows(t, s, c.ID, append(rows, far)...)
	run := startRun(t, s, c.ID)
	ctx := context.Background()
	now := date(t, "15.05.2025 10:02:30").Time()

	_, recs, err := s.ClaimBatch(ctx, c.ID, run, 10, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Consent.Recipient)
	}
	want := []string{"+905330000000", "+905330000001", "+905330000002", "+905339999999"}
	if len(got) != len(want) {
		t.Fatalf("claimed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("claimed %v, want %v", got, want)
		}
	}
	n, err := s.NotYetDue(ctx, c.ID, now)
	if err != nil || n != 2 {
		t.Fatalf("not yet due = %d, %v; want the 2 dated 10:03 and 10:04", n, err)
	}
	bl, err := s.Backlog(ctx, c.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if bl.Pending != 2 || bl.NextDueIn < 29*time.Second || bl.NextDueIn > 31*time.Second {
		t.Fatalf("backlog = %+v, want 2 pending, the first due in 30s (10:03:00)", bl)
	}
	if _, recs, _ := s.ClaimBatch(ctx, c.ID, run, 10, now.Add(29*time.Second)); len(recs) != 0 {
		t.Fatalf("claimed %d records before their date", len(recs))
	}
	_, recs, err = s.ClaimBatch(ctx, c.ID, run, 10, now.Add(90*time.Second))
	if err != nil || len(recs) != 2 {
		t.Fatalf("once their time came: %d records, %v; want 2", len(recs), err)
	}
	if n, _ := s.NotYetDue(ctx, c.ID, now); n != 0 {
		t.Fatalf("not yet due = %d with nothing pending", n)
	}
	// A record a batch gave back to wait for a retry is not yet due either
	// (FinishBatch keeps its batch).
	execSQL(t, s, `UPDATE consents SET state = 'pending', next_attempt_at = now() + interval '1 hour'
		WHERE recipient = '+905330000000'`)
	if n, _ := s.NotYetDue(ctx, c.ID, now.Add(time.Hour)); n != 1 {
		t.Fatalf("not yet due = %d, want the record waiting for its retry", n)
	}
}
