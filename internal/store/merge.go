package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// Statements of sql/staging.sql.
var (
	mergeStaging = stmt("MergeStaging") // the merge of a file, counted
	mergeItems   = stmt("MergeItems")   // the merge of an intake request, a verdict per row
)

// mergeCounts is what the merge statement reports.
type mergeCounts struct {
	keys, superseded, inserted, updated int
}

// origin says where the rows of a merge came from, for the events of the
// records it writes (see MergeWrites in sql/staging.sql).
type origin struct {
	kind      string // "file", "api" or "source"
	prefix    string // file:NAME, api:TOKEN or source:BRAND; the line or user follows
	importID  int64  // the transaction's imports row (reserveImportID)
	requestID string // the intake request's, if any
}

// stamp is o as the rows are staged at the transaction's time at: each
// row's origin and first event's hash are made in Go (see eventStamp).
func (o origin) stamp(at time.Time) *eventStamp {
	return &eventStamp{at: at, kind: o.kind, prefix: o.prefix, importID: o.importID, requestID: o.requestID}
}

// merge runs the file merge (mergeStaging) and returns its counts.
func merge(ctx context.Context, tx *sql.Tx, connectorID int64, fast bool, o origin) (mergeCounts, error) {
	var m mergeCounts
	err := runMerge(ctx, tx, mergeStaging, connectorID, fast, o, func(rows *sql.Rows) error {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return errors.New("the merge returned no counts")
		}
		return rows.Scan(&m.keys, &m.superseded, &m.inserted, &m.updated)
	})
	return m, err
}

// runMerge runs q, a statement built on sql/staging.sql's MergeWrites, and hands its rows to
// read. On the fast path it runs inside a savepoint; if a concurrent writer
// inserted one of the new records in the meantime, it rolls back to the
// savepoint and runs q again off the fast path, which cannot conflict (read
// is then called again, and must start afresh). The staging table is
// untouched either way.
func runMerge(ctx context.Context, tx *sql.Tx, q string, connectorID int64, fast bool, o origin, read func(*sql.Rows) error) error {
	args := func(fast bool) []any {
		return []any{connectorID, fast, o.kind, o.prefix, o.importID, o.requestID}
	}
	if fast {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT merge_fast"); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		err := query(ctx, tx, q, read, args(true)...)
		if err == nil {
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT merge_fast"); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
			return nil
		}
		if pq.As(err, pqerror.UniqueViolation) == nil {
			return fmt.Errorf("merge: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT merge_fast"); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	}
	if err := query(ctx, tx, q, read, args(false)...); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	return nil
}

// query runs q and hands its rows to read; a failure of the statement
// surfaces from any of the three steps.
func query(ctx context.Context, tx *sql.Tx, q string, read func(*sql.Rows) error, args ...any) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := read(rows); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}
