package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// Transient on the errors a real server gives: a schema error is not
// transient; a connection the server closed, and a server that does not
// listen, are.
func TestTransientOnRealErrors(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	_, err := s.db.ExecContext(ctx, `SELECT * FROM no_such_table`)
	if err == nil || Transient(err) {
		t.Fatalf("a missing table: %v, transient %v; want an error that is not transient", err, Transient(err))
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO runs (connector_id, trigger) VALUES (-1, 'schedule')`)
	if err == nil || Transient(err) {
		t.Fatalf("a foreign key: %v, transient %v", err, Transient(err))
	}

	// The server ends the session (as on a restart: admin shutdown).
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	execSQL(t, s, `SELECT pg_terminate_backend($1)`, pid)
	time.Sleep(100 * time.Millisecond)
	_, err = conn.ExecContext(ctx, `SELECT 1`)
	if err == nil || !Transient(err) {
		t.Fatalf("a terminated session: %v, transient %v; want transient", err, Transient(err))
	}
	if _, err = conn.ExecContext(ctx, `SELECT 1`); err == nil || !Transient(err) {
		t.Fatalf("the same connection again: %v, transient %v; want transient", err, Transient(err))
	}

	// Nobody listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db, err := sql.Open("postgres", "postgres://nobody@"+addr+"/x?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err == nil || !Transient(err) {
		t.Fatalf("connection refused: %v, transient %v; want transient", err, Transient(err))
	}
}

func TestTransientCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("claim batch: %w", err) }
	code := func(c string) error { return wrap(&pq.Error{Code: pqerror.Code(c), Message: "m"}) }
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{code("57P01"), true}, // admin shutdown
		{code("57P02"), true},
		{code("57P03"), true}, // the database system is starting up
		{code("08006"), true}, // connection failure
		{code("08001"), true},
		{code("53300"), true}, // too many connections
		{code("40001"), true},
		{code("40P01"), true},
		{code("42P01"), false}, // undefined table: the schema
		{code("42703"), false}, // undefined column
		{code("23505"), false}, // unique violation
		{code("57014"), true},  // a statement timeout: under load or behind a lock
		{code("53100"), true},  // disk full: may be freed within the window
		{code("55P03"), true},  // lock_timeout
		{code("23514"), false}, // check violation
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{wrap(driver.ErrBadConn), true},
		{wrap(io.EOF), true},
		{wrap(io.ErrUnexpectedEOF), true},
		{wrap(sql.ErrConnDone), true},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), true},
		{wrap(context.Canceled), false},
		{wrap(cctx.Err()), false},
		{wrap(context.DeadlineExceeded), true},
		{errors.New("finish batch 3: batch is no longer claimed"), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
