// Package store keeps iys-sync's state in PostgreSQL (sqlx over lib/pq):
// connectors, their consent records and the imports that fed them. The
// schema comes from embedded migrations applied by Open.
//
// consents.connector_id has no foreign key (its per-row check would double
// the cost of a large import; see migrations/0001_init.sql). So every
// transaction that inserts consents first locks its connector row with
// SELECT ... FOR KEY SHARE, as the key check would, and a trigger keeps a
// connector with records from being deleted.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the "postgres" driver
)

// Store is the database. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// upsertOnly skips the merge's fast path (tests run both paths).
	upsertOnly bool
	// lockCheck is how often LockConnectors checks its connection (0: defaultLockCheck).
	lockCheck time.Duration
}

// Open connects, checks the connection and brings the schema up to date.
// Its errors name the server by its redacted URL and never hold the password.
func Open(ctx context.Context, url string) (*Store, error) {
	s, err := open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", RedactURL(url), scrub(err, url))
	}
	return s, nil
}

func open(ctx context.Context, url string) (*Store, error) {
	if !readable(url) {
		// lib/pq's parse errors may quote a piece of the password.
		return nil, errUnreadable
	}
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }
