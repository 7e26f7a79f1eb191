package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
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

// Transient reports whether err is a database failure that may pass if the
// same work is tried again later: the server unreachable, restarting or
// shutting down; out of connections, memory or disk; a lock not granted in
// time or a statement timed out; a conflict that the store's own retries
// did not get past. Other errors (a bug, a constraint) stay as they are
// when tried again.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if conflict(err) {
		return true
	}
	if e := pq.As(err); e != nil {
		switch e.Code.Class() {
		case pqerror.ClassConnectionException, pqerror.ClassInsufficientResources, pqerror.ClassOperatorIntervention:
			return true // 08: connection; 53: disk full, out of memory, too many connections; 57: shutdown, timeout
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded)
}
