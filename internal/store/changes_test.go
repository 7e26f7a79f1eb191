package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// TestFeedWhileChangesCommit: pulls apply pages concurrently (each its own
// transaction) and a refusal commits late, while readers follow the feed
// from their cursors. Every reader gets every change exactly once, all in
// the same order; another connector's changes stay out; records written by
// an import (pending) or changed without becoming İYS's value or refused
// make none.
func TestFeedWhileChangesCommit(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := install(t, s, "A"), install(t, s, "B")
	when := consent.NewDate(time.Date(2025, 5, 15, 10, 0, 0, 0, consent.Istanbul))
	importRows(t, s, a.ID, sms(t, 1, "+905000000001", consent.StatusOnay, "15.05.2025 09:00:00"))
	execSQL(t, s, "UPDATE consents SET state = 'in_flight' WHERE recipient = '+905000000001'")
	if n := count(t, s, "SELECT count(*) FROM changes"); n != 0 {
		t.Fatalf("%d changes from an import and a claim, want 0", n)
	}

	const writers, pages, perPage, readers = 4, 10, 5, 3
	page := func(w, p int) FeedPage {
		var cs []Change
		for i := range perPage {
			cs = append(cs, Change{Recipient: fmt.Sprintf("+9053%02d%02d%04d", w, p, i), RecipientType: consent.Bireysel,
				Type: consent.TypeMesaj, Status: consent.StatusRet, ConsentDate: when, Source: consent.SourceIYSMobil})
		}
		return FeedPage{Source: "IYS", Changes: cs}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers+1)
	// A refusal whose transaction stays open while the others commit.
	lateOpen := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tx, err := s.db.Begin()
		if err != nil {
			errs <- err
			return
		}
		defer tx.Rollback() //nolint:errcheck // committed below
		if _, err := tx.Exec(`UPDATE consents SET state = 'rejected', outcome = 'too_old', iys_code = 'H176'
			WHERE recipient = '+905000000001'`); err != nil {
			errs <- err
			return
		}
		close(lateOpen)
		time.Sleep(300 * time.Millisecond)
		if err := tx.Commit(); err != nil {
			errs <- err
		}
	}()
	<-lateOpen
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pages {
				conn := a.ID
				if p == 3 {
					conn = b.ID // another connector's
				}
				if _, err := s.ApplyChanges(ctx, conn, page(w, p)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	want := 1 + writers*(pages-1)*perPage
	seen := make([][]int64, readers)
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			var pos int64
			finished := false
			for {
				got, err := s.ChangesAfter(ctx, a.ID, pos, 7)
				if err != nil {
					errs <- err
					return
				}
				for _, c := range got {
					if c.Pos <= pos {
						errs <- fmt.Errorf("reader %d: place %d after %d", r, c.Pos, pos)
						return
					}
					pos = c.Pos
					seen[r] = append(seen[r], c.ID)
				}
				if len(got) == 0 {
					if finished {
						return
					}
					select {
					case <-done:
						finished = true // one more read: what committed last
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for r := range readers {
		ids := slices.Clone(seen[r])
		slices.Sort(ids)
		if len(seen[r]) != want || len(slices.Compact(ids)) != want {
			t.Fatalf("reader %d: %d changes (%d distinct), want %d", r, len(seen[r]), len(slices.Compact(ids)), want)
		}
		if !slices.Equal(seen[r], seen[0]) {
			t.Fatalf("readers 0 and %d saw different orders", r)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM changes WHERE connector_id = $1 AND kind = 'refused' AND outcome = 'too_old'", a.ID); n != 1 {
		t.Fatalf("%d refusals, want 1", n)
	}
	if n := count(t, s, "SELECT count(*) FROM changes WHERE connector_id = $1", b.ID); n != writers*perPage {
		t.Fatalf("connector B: %d changes, want %d", n, writers*perPage)
	}
	// The same values again change nothing, and make no change.
	if _, err := s.ApplyChanges(ctx, a.ID, page(0, 0)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count(*) FROM changes WHERE connector_id = $1", a.ID); n != want {
		t.Fatalf("%d changes after a page applied again, want %d", n, want)
	}
}
