package source

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/redact"
)

// Defaults of the brand's database sessions.
const (
	// DefaultStatementTimeout bounds one statement (one page) of a source
	// query: a page of 5,000 users over a sane query takes seconds.
	DefaultStatementTimeout = 5 * time.Minute
	// IdleInTransactionTimeout ends a session whose read stalls between two
	// statements, so that no transaction is left open on the brand's database.
	IdleInTransactionTimeout = time.Minute
	// connectTimeout bounds a connection attempt to an unreachable server.
	connectTimeout = 30 * time.Second
)

// DB is the brand's database, every session of it confined: read-only by
// default (default_transaction_read_only), each statement bounded
// (statement_timeout) and no transaction left idle
// (idle_in_transaction_session_timeout), set as connection options, so that
// the settings hold from the session's first statement. Only a role that may
// only read is a real guarantee: see the README, Security.
type DB struct {
	db      *sql.DB
	timeout time.Duration
	scrub   *redact.Scrubber
}

// Open opens the brand's database dsn (IYS_SOURCE_DATABASE_URL) with its
// sessions confined; statementTimeout 0 is DefaultStatementTimeout. It does
// not connect. Its errors never hold the connection string.
func Open(dsn string, statementTimeout time.Duration) (*DB, error) {
	if statementTimeout <= 0 {
		statementTimeout = DefaultStatementTimeout
	}
	redact.RegisterDSN(dsn)
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, errors.New("IYS_SOURCE_DATABASE_URL: not a connection string the PostgreSQL driver accepts (not shown: it may hold a password)")
	}
	if cfg.Runtime == nil {
		cfg.Runtime = map[string]string{}
	}
	// Startup parameters come after the DSN's "options" (-c ...), so these win.
	cfg.Runtime["default_transaction_read_only"] = "on"
	cfg.Runtime["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	cfg.Runtime["idle_in_transaction_session_timeout"] = strconv.FormatInt(IdleInTransactionTimeout.Milliseconds(), 10)
	if cfg.ApplicationName == "" {
		cfg.ApplicationName = "iys-sync source"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	c, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, errors.New("IYS_SOURCE_DATABASE_URL: not a connection string the PostgreSQL driver accepts (not shown: it may hold a password)")
	}
	db := sql.OpenDB(c)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	return &DB{db: db, timeout: statementTimeout, scrub: redact.New(redact.DSNSecrets(dsn)...)}, nil
}

// Close closes the connection pool.
func (d *DB) Close() error { return d.db.Close() }

// StatementTimeout is the bound of one statement on the database.
func (d *DB) StatementTimeout() time.Duration { return d.timeout }

// readTx runs fn in a READ ONLY transaction, bounded by the statement
// timeout and a little more on our side too (should a query have turned the
// server's off), and always rolled back: nothing is written, and a setting a
// query changed with set_config() dies with the transaction instead of
// staying on the pooled session.
func (d *DB) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout+30*time.Second)
	defer cancel()
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(tx)
}

// query runs one statement with the extended protocol, whatever its
// arguments: lib/pq sends a statement without arguments as a simple query,
// which runs every statement of a string; a prepared one runs exactly one.
func query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, func(), error) {
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		stmt.Close()
		return nil, nil, err
	}
	return rows, func() { rows.Close(); stmt.Close() }, nil
}

// wrap wraps err with what failed ("source query"), its text scrubbed of
// the connection string's secrets (and the process's).
func (d *DB) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return redact.Error(d.scrub.Error(fmt.Errorf("%s: %w", what, err)))
}
