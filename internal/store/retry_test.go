package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// withSetting adds a session setting to a connection URL.
func withSetting(t *testing.T, dsn, name, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func pqErr(code pqerror.Code) error {
	return fmt.Errorf("finish batch 7: %w", &pq.Error{Code: code, Message: "test"})
}

// TestRetryRunsConflictsAgain: a deadlock, a serialization failure or a lock
// timeout is tried again, a bounded number of times; other errors are not.
func TestRetryRunsConflictsAgain(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		err   error
		tries int
	}{
		{pqErr(pqerror.TRDeadlockDetected), retryAttempts},
		{pqErr(pqerror.TRSerializationFailure), retryAttempts},
		{pqErr(pqerror.LockNotAvailable), retryAttempts},
		{pqErr(pqerror.UniqueViolation), 1},
		{errors.New("a bug"), 1},
	} {
		tries := 0
		err := retry(ctx, func(attempt int) error {
			tries++
			if attempt != tries {
				t.Fatalf("attempt %d on try %d", attempt, tries)
			}
			return c.err
		})
		if tries != c.tries || !errors.Is(err, c.err) {
			t.Errorf("%v: %d tries (want %d), returned %v", c.err, tries, c.tries, err)
		}
	}
	// A conflict that passes: the second try's result stands.
	tries := 0
	if err := retry(ctx, func(int) error {
		if tries++; tries == 1 {
			return pqErr(pqerror.TRDeadlockDetected)
		}
		return nil
	}); err != nil || tries != 2 {
		t.Fatalf("%d tries, %v", tries, err)
	}
	// A done context ends the pauses.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	tries = 0
	start := time.Now()
	retry(cctx, func(int) error { tries++; return pqErr(pqerror.TRDeadlockDetected) }) //nolint:errcheck // the tries count
	if tries != 1 || time.Since(start) > time.Second {
		t.Fatalf("after cancel: %d tries in %v", tries, time.Since(start))
	}
}

// TestOpenSetsPoolAndTimeouts: the pool is bounded, and every session has
// the lock and statement timeouts, unless the connection string sets its own.
func TestOpenSetsPoolAndTimeouts(t *testing.T) {
	s, dsn := newStore(t)
	if n := s.db.Stats().MaxOpenConnections; n != maxOpenConns {
		t.Errorf("pool of %d connections, want %d", n, maxOpenConns)
	}
	show := func(s *Store, name string) string {
		var v string
		if err := s.db.Get(&v, "SHOW "+name); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := show(s, "lock_timeout"); v != "15s" {
		t.Errorf("lock_timeout %q", v)
	}
	if v := show(s, "statement_timeout"); v != "10min" {
		t.Errorf("statement_timeout %q", v)
	}
	o, err := Open(context.Background(), withSetting(t, dsn, "lock_timeout", "2s"))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if v := show(o, "lock_timeout"); v != "2s" {
		t.Errorf("lock_timeout %q, want the connection string's 2s", v)
	}
}

// TestLockTimeoutIsTransient: a record locked by a stuck session makes a
// writer fail after lock_timeout (tried again a few times), with an error
// callers can tell is transient, instead of waiting for ever.
func TestLockTimeoutIsTransient(t *testing.T) {
	_, dsn := newStore(t)
	s, err := Open(context.Background(), withSetting(t, dsn, "lock_timeout", "50ms"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := install(t, s, "B")
	importRows(t, s, c.ID, sms(t, 1, phoneA, "ONAY", "15.05.2025 10:00:00"))
	stuck, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Rollback() //nolint:errcheck
	if _, err := stuck.Exec("SELECT 1 FROM consents FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	_, err = s.ImportItems(context.Background(), c.ID, "api:test", "req-1",
		[]ImportRow{sms(t, 1, phoneA, "RET", "15.05.2025 11:00:00")}, []IntakeChannel{{Channel: "sms", Valid: 1}})
	if err == nil || !Transient(err) || pq.As(err, pqerror.LockNotAvailable) == nil {
		t.Fatalf("err = %v, want a transient lock timeout", err)
	}
}
