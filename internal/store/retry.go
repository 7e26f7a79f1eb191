package store

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// Every writer of consent records takes its row locks in one order, the
// records' key (connector, recipient, recipient type, type): multi-row
// inserts and upserts read their rows sorted by it, and updates first lock
// the rows with SELECT ... ORDER BY key FOR NO KEY UPDATE. Two writers then
// never wait on each other in a circle. What is left (a record inserted by
// a third transaction between two statements of one) is rare, and retry
// runs the transaction again.

// retryAttempts bounds the tries of a transaction that a conflict with
// another aborted.
const retryAttempts = 4

// retryPause is the first pause between tries; it doubles each time, and
// each pause is drawn at random between half of it and all of it, so that
// the two sides of a deadlock do not meet again at once.
const retryPause = 20 * time.Millisecond

// conflict reports whether err is a transaction aborted for a conflict with
// another, which a new try may not meet: a deadlock, a serialization
// failure, a lock not granted within lock_timeout.
func conflict(err error) bool {
	return pq.As(err, pqerror.TRDeadlockDetected, pqerror.TRSerializationFailure, pqerror.LockNotAvailable) != nil
}

// retry runs fn, and runs it again while it fails with a conflict, up to
// retryAttempts tries with growing, jittered pauses; it returns fn's last
// error. attempt counts from 1. fn must be safe to run again: one statement,
// or one transaction that it rolls back whole on failure.
func retry(ctx context.Context, fn func(attempt int) error) error {
	pause := retryPause
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil || attempt == retryAttempts || !conflict(err) {
			return err
		}
		t := time.NewTimer(pause/2 + rand.N(pause/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 2
	}
}
