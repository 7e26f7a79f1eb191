package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/lib/pq"
)

// One run per connector at a time, across processes and replicas: a run
// holds a PostgreSQL session advisory lock per connector it serves, all on
// one dedicated connection kept for the run.
//
// Why a session lock and not a lease row: it ends with the session, so a
// killed process or a lost network frees it at once, with no heartbeat to
// write, no expiry to tune and no clock to trust; a lease row must be
// renewed, and a replica must wait out an expiry after a crash. Its cost is
// one connection per run (not per connector: the locks of a run share it),
// and it needs a session that stays the same (no transaction-mode pooler
// between us and PostgreSQL). A lost connection loses the locks: the held
// context then ends (cause ErrLockLost), and the engine takes them again,
// or stops the connectors another run took meanwhile; whatever it had in
// flight is safe (see the engine's recovery).

// connectorLockClass is the first key of the two-key advisory locks that
// guard connectors' runs ("iysr"); the second is the connector id. The
// migration lock uses the one-key form, a separate key space.
const connectorLockClass int32 = 0x6979_7372

// ErrLockLost is the cause of a held context's end when the connection that
// held the locks failed (context.Cause tells it from a cancelled parent).
var ErrLockLost = errors.New("connector lock lost: the database connection holding it failed")

// defaultLockCheck is how often the lock's connection is checked.
const defaultLockCheck = 2 * time.Second

// lockCheckTimeout bounds one check. A slow answer is not a lost lock:
// while the session lives nobody else can take the lock, and a connection
// dropped for being slow leaves a session that holds it a little longer,
// so that the run cannot take it again at once. A dead connection fails
// fast; one that went silent (no reset) is found out after this long.
const lockCheckTimeout = 30 * time.Second

// LockConnectors takes, without waiting, the run lock of each connector
// whose id is given, and reports which it got: another run holds the
// others. held is a child of ctx that is also cancelled (with cause
// ErrLockLost) if the connection holding the locks fails; run the work
// under it. release frees the locks and the connection; call it once, also
// when no lock was taken.
func (s *Store) LockConnectors(ctx context.Context, ids []int64) (held context.Context, locked []int64, release func(), err error) {
	for _, id := range ids {
		if id < 1 || id > math.MaxInt32 {
			return nil, nil, nil, fmt.Errorf("lock connectors: connector id %d is out of the lock's range", id)
		}
	}
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("lock connectors: %w", err)
	}
	drop := func() {
		// Unlock even when ctx is done. If that fails the locks live on in
		// this session: drop the connection instead of pooling it.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(uctx, "SELECT pg_advisory_unlock_all()"); uerr != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // ErrBadConn is the point
		}
		conn.Close()
	}
	rows, err := conn.QueryxContext(ctx, `
		SELECT id FROM unnest($1::bigint[]) AS id
		WHERE pg_try_advisory_lock($2, id::int4)`, pq.Array(ids), connectorLockClass)
	if err == nil {
		for rows.Next() {
			var id int64
			if err = rows.Scan(&id); err != nil {
				break
			}
			locked = append(locked, id)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		drop()
		return nil, nil, nil, fmt.Errorf("lock connectors: %w", err)
	}

	held, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	every := s.lockCheck
	if every <= 0 {
		every = defaultLockCheck
	}
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-held.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(context.WithoutCancel(held), every+lockCheckTimeout)
			_, err := conn.ExecContext(pctx, "SELECT 1")
			pcancel()
			if err != nil {
				cancel(fmt.Errorf("%w: %v", ErrLockLost, err))
				return
			}
		}
	}()
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(stop)
			<-done
			cancel(context.Canceled)
			drop()
		})
	}
	return held, locked, release, nil
}
