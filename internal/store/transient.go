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

// IsTransient tells whether an error of a store call may go away by itself,
// so that the same call, made again a little later, may succeed: the server
// restarting, shutting down or not reachable, the connection lost, too many
// connections, a deadlock or a serialization failure. Everything else (a
// schema that does not match, a constraint, a bug of ours) fails the same
// way again. A context's end is not transient: the caller stopped.
func IsTransient(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	if e := pq.As(err); e != nil {
		return transientCode(string(e.Code))
	}
	for _, t := range []error{driver.ErrBadConn, sql.ErrConnDone, io.EOF, io.ErrUnexpectedEOF,
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

// transientCode tells the SQLSTATEs of IsTransient.
func transientCode(code string) bool {
	if len(code) == 5 && code[:2] == "08" { // connection exception
		return true
	}
	switch code {
	case "57P01", // admin_shutdown: the server is stopping (fast shutdown, restart)
		"57P02", // crash_shutdown: another backend crashed, the server restarts
		"57P03", // cannot_connect_now: starting up, shutting down, in recovery
		"57P05", // idle_session_timeout: the session was closed, a new one works
		"53300", // too_many_connections
		"40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03": // lock_not_available: a lock timeout
		return true
	}
	return false
}
