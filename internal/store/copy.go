package store

import (
	"context"
	"database/sql"
	"fmt"
)

// copyStaging is sql/staging.sql's CopyStaging.
var copyStaging = stmt("CopyStaging")

// stagingValues are the staged values of row number seq, in the order of
// the staging tables' columns (sql/staging.sql's StagingColumns). With st,
// the row's origin and the hash of the first event of a record it would
// create; without, NULL (the merge makes them).
func stagingValues(seq int, r ImportRow, st *eventStamp) []any {
	var origin, hash any
	if st != nil {
		o := st.originOf(r)
		origin, hash = o, st.firstHash(r, o)
	}
	return []any{int64(seq), int64(r.Line), r.Recipient, string(r.RecipientType),
		string(r.Type), string(r.Status), r.ConsentDate.Time(), string(r.Source), r.ExternalID, origin, hash}
}

// ctxCheckEvery is how many rows go by between context checks during COPY.
const ctxCheckEvery = 4096

// copyRows streams the source's rows into the staging table with COPY; lib/pq
// sends them in 64 KiB messages, so nothing accumulates here. It returns the
// number of rows and of distinct lines. st stamps the rows (see stagingValues).
func copyRows(ctx context.Context, tx *sql.Tx, channels []string, src RowSource, st *eventStamp) (rows, lines int, err error) {
	copyIn, err := tx.PrepareContext(ctx, copyStaging)
	if err != nil {
		return 0, 0, fmt.Errorf("copy: %w", err)
	}
	defer copyIn.Close()

	var failed error // the first failure of emit: it stands even if src swallows it
	prevLine := 0
	emit := func(r ImportRow) error {
		if failed != nil {
			return failed
		}
		if rows%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				failed = err
				return err
			}
		}
		if err := checkRow(r, prevLine, channels); err != nil {
			failed = err
			return err
		}
		if _, err := copyIn.ExecContext(ctx, stagingValues(rows, r, st)...); err != nil {
			failed = fmt.Errorf("copy: %w", err)
			return failed
		}
		if r.Line != prevLine {
			lines++
			prevLine = r.Line
		}
		rows++
		return nil
	}
	srcErr := src(emit)
	if failed != nil {
		return 0, 0, failed
	}
	if srcErr != nil {
		return 0, 0, fmt.Errorf("read rows: %w", srcErr)
	}
	// An Exec without arguments ends the COPY and reports the server's verdict.
	if _, err := copyIn.ExecContext(ctx); err != nil {
		return 0, 0, fmt.Errorf("copy: %w", err)
	}
	return rows, lines, nil
}
