// Package store keeps iys-sync's state in PostgreSQL (sqlx over lib/pq):
// connectors, their consent records and the imports that fed them. The
// schema comes from embedded migrations applied by Open.
//
// consents.connector_id has no foreign key (its per-row check would double
// the cost of a large import; see migrations/0001_init.sql). So every
// transaction that inserts consents first locks its connector row with
// SELECT ... FOR KEY SHARE, as the key check would, and a trigger keeps a
// connector with records from being deleted.
//
// Its SQL is in sql/, one file per table, as named statements (see
// statements.go); each table has one row type whose db tags name every
// column (see rowTypes), and the statements that read a whole row take
// their column list from it. Session settings, savepoints, advisory locks
// and the migrator's own table stay beside their Go code.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Store is the database. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
	// path limits the import's paths (tests run each).
	path importPath
	// lockCheck is how often LockConnectors checks its connection (0: defaultLockCheck).
	lockCheck time.Duration
}

// The connection pool. A process needs few connections: one per run for
// its lock, one per bulk request being claimed or recorded (a moment each),
// one per intake request being merged, one per import. Past maxOpenConns,
// callers wait their turn in the pool rather than open more sessions on a
// server other services share.
const (
	maxOpenConns    = 20
	maxIdleConns    = 10
	connMaxIdleTime = 5 * time.Minute
	connMaxLifetime = time.Hour
)

// sessionDefaults are the settings of every session of the pool, unless the
// connection string gives its own (lib/pq sends a parameter it does not know
// to the server as a setting: postgres://...?lock_timeout=5s).
//
//   - lock_timeout: a lock held by a stuck session becomes an error that the
//     store retries (see retry) and callers see as Transient, not a hang.
//   - statement_timeout: the same for a statement that never ends. File
//     and source imports lift it for their own transaction: their COPY
//     lasts as long as their input.
var sessionDefaults = map[string]string{
	"lock_timeout":      "15s",
	"statement_timeout": "10min",
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
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.Runtime == nil {
		cfg.Runtime = map[string]string{}
	}
	for k, v := range sessionDefaults {
		if _, set := cfg.Runtime[k]; !set {
			cfg.Runtime[k] = v
		}
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	sdb := sql.OpenDB(connector)
	sdb.SetMaxOpenConns(maxOpenConns)
	sdb.SetMaxIdleConns(maxIdleConns)
	sdb.SetConnMaxIdleTime(connMaxIdleTime)
	sdb.SetConnMaxLifetime(connMaxLifetime)
	db := sqlx.NewDb(sdb, "postgres")
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
