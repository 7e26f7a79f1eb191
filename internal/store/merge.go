package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// mergeCounts is what the merge statement reports.
type mergeCounts struct {
	keys, superseded, inserted, updated int
}

// merge runs mergeStaging on the fast path, inside a savepoint; if a
// concurrent writer inserted one of the file's new records in the meantime,
// it rolls back to the savepoint and runs the upsert-only path, which cannot
// conflict. The staging table is untouched either way.
func merge(ctx context.Context, tx *sql.Tx, connectorID int64, fast bool) (mergeCounts, error) {
	if fast {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT merge_fast"); err != nil {
			return mergeCounts{}, fmt.Errorf("merge: %w", err)
		}
		m, err := runMerge(ctx, tx, connectorID, true)
		if err == nil {
			_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT merge_fast")
			if err != nil {
				return mergeCounts{}, fmt.Errorf("merge: %w", err)
			}
			return m, nil
		}
		if pq.As(err, pqerror.UniqueViolation) == nil {
			return mergeCounts{}, fmt.Errorf("merge: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT merge_fast"); err != nil {
			return mergeCounts{}, fmt.Errorf("merge: %w", err)
		}
	}
	m, err := runMerge(ctx, tx, connectorID, false)
	if err != nil {
		return mergeCounts{}, fmt.Errorf("merge: %w", err)
	}
	return m, nil
}

func runMerge(ctx context.Context, tx *sql.Tx, connectorID int64, fast bool) (mergeCounts, error) {
	var m mergeCounts
	err := tx.QueryRowContext(ctx, mergeStaging, connectorID, fast).Scan(&m.keys, &m.superseded, &m.inserted, &m.updated)
	return m, err
}
