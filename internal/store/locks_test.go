package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestLockConnectorsExcludesOtherRuns(t *testing.T) {
	s, url := newStore(t)
	a, b := install(t, s, "A"), install(t, s, "B")
	other, err := Open(context.Background(), url) // another replica: its own pool
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()

	held1, got1, release1, err := s.LockConnectors(ctx, []int64{a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got1, []int64{a.ID}) || held1.Err() != nil {
		t.Fatalf("first lock got %v", got1)
	}
	_, got2, release2, err := other.LockConnectors(ctx, []int64{a.ID, b.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got2, []int64{b.ID}) {
		t.Fatalf("second run got %v, want only B (A is held)", got2)
	}
	// Within one process too: another run is another session.
	_, got3, release3, err := s.LockConnectors(ctx, []int64{a.ID, b.ID})
	if err != nil {
		t.Fatal(err)
	}
	release3()
	if len(got3) != 0 {
		t.Fatalf("a third run got %v, want nothing", got3)
	}
	release1()
	release1() // twice is harmless
	if held1.Err() == nil {
		t.Fatal("held context still alive after release")
	}
	_, got4, release4, err := other.LockConnectors(ctx, []int64{a.ID})
	if err != nil {
		t.Fatal(err)
	}
	defer release4()
	if !slices.Equal(got4, []int64{a.ID}) {
		t.Fatalf("after release, got %v, want A", got4)
	}
	release2()
	if _, _, _, err := s.LockConnectors(ctx, []int64{1 << 40}); err == nil {
		t.Fatal("an id beyond the lock's range was accepted")
	}
}

// TestLockLostWhenItsConnectionDies: the session holding the locks is
// killed; the held context ends with ErrLockLost and another run can take
// the connector.
func TestLockLostWhenItsConnectionDies(t *testing.T) {
	s, _ := newStore(t)
	s.lockCheck = 50 * time.Millisecond
	a := install(t, s, "A")
	held, got, release, err := s.LockConnectors(context.Background(), []int64{a.ID})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	if n := count(t, s, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); n != 1 {
		t.Fatalf("%d advisory locks held, want 1", n)
	}
	execSQL(t, s, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the held context lived on after its connection died")
	}
	if !errors.Is(context.Cause(held), ErrLockLost) {
		t.Fatalf("cause = %v, want ErrLockLost", context.Cause(held))
	}
	_, again, release2, err := s.LockConnectors(context.Background(), []int64{a.ID})
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if len(again) != 1 {
		t.Fatal("the connector stayed locked after its session died")
	}
}
