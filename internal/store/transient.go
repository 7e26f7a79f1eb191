package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/lib/pq"
)

// Transient tells whether an error of a store call may go away by itself,
// so that the same call, made again a little later, may succeed: the server
// restarting, shutting down or not reachable, the connection lost, out of
// connections, memory or disk, a statement or lock that timed out, a
// deadlock or a serialization failure that the store's own retries did not
// get past. Everything else (a schema that does not match, a constraint, a
// bug of ours) fails the same way again. The intake answers 503 for these,
// and a run tries its step again within the window. A cancelled context is
// not transient: the caller stopped.
func Transient(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	if e := pq.As(err); e != nil {
		return transientCode(string(e.Code))
	}
	for _, t := range []error{driver.ErrBadConn, errConnLost, sql.ErrConnDone, io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, t) {
			return true
		}
	}
	// Dial failures, timeouts, name lookups: the network between us and
	// the server.
	var ne net.Error
	return errors.As(err, &ne)
}

// transientCode tells the SQLSTATEs of Transient.
func transientCode(code string) bool {
	if len(code) == 5 && (code[:2] == "08" || code[:2] == "53") {
		return true // connection exception; insufficient resources (disk, memory, connections)
	}
	switch code {
	case "57014", // query_canceled: a statement timeout, under load or behind a lock
		"57P01", // admin_shutdown: the server is stopping (fast shutdown, restart)
		"57P02", // crash_shutdown: another backend crashed, the server restarts
		"57P03", // cannot_connect_now: starting up, shutting down, in recovery
		"57P05", // idle_session_timeout: the session was closed, a new one works
		"40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03": // lock_not_available: a lock timeout
		return true
	}
	return false
}
