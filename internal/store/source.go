package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// SourceResult is what one read of a connector's user-table source did: the
// merge's counts, as ImportFile gives them, and the users that the source
// returned before but not this time.
type SourceResult struct {
	ImportResult
	Users       int // distinct external ids of this read's rows
	Disappeared int // users (external ids) seen by an earlier read and not by this one
}

// ImportSource stores the rows read from a connector's user-table source
// (internal/source) as pending consents, in one transaction, with the staging
// table and newest-wins merge of ImportFile. Each row's Line is its user's
// 1-based position in the read, and every row carries the user's external id.
//
// The source is the brand's database, which may be slow: no transaction of
// ours stays open while it thinks. The rows are first spooled, a few
// thousand at a time, each chunk COPYed in its own short transaction into a
// temporary table of one dedicated session (memory stays flat; the rows never
// touch the worker's disk); the merge's transaction opens on that session
// once src has returned, and moves the spool into the staging table.
//
// Like ImportItems, it writes one imports row per channel ("email": EPOSTA
// rows, "sms": MESAJ and ARAMA), path being e.g. "source:BRAND"; counts is
// called once the rows are read, and its Valid must be the users that gave
// rows of the channel. The merge's counts are split per channel by the
// merge's own staged CTE, read just before it.
//
// The external ids of the rows are remembered (source_users); those of
// earlier reads that this read no longer has are counted in Disappeared and
// listed by SourceDisappeared. Nothing is deleted.
func (s *Store) ImportSource(ctx context.Context, connectorID int64, path string, counts func() []IntakeChannel, src RowSource) (SourceResult, error) {
	res, err := s.importSource(ctx, connectorID, path, counts, src)
	if err != nil {
		return SourceResult{}, fmt.Errorf("import source: %w", err)
	}
	return res, nil
}

// sourceUserRow is a source_users row: a user (external id) a read of the
// connector's source returned, and when last; the table's row type (see
// rowTypes).
type sourceUserRow struct {
	ConnectorID int64     `db:"connector_id"`
	ExternalID  string    `db:"external_id"`
	SeenAt      time.Time `db:"seen_at"`
}

// The user-table source's statements, of sql/staging.sql,
// sql/source_users.sql and sql/connectors.sql.
var (
	sourceChannelCounts = stmt("SourceChannelCounts") // the merge's Staged, counted per channel
	createSpool         = stmt("CreateSpool")
	dropSpool           = stmt("DropSpool")
	copySpool           = stmt("CopySpool")
	stageSpool          = stmt("StageSpool")
	seeSourceUsers      = stmt("SeeSourceUsers")
	markSourceRead      = stmt("MarkSourceRead")
	connectorChannels   = stmt("ConnectorChannels")
	countDisappeared    = stmt("CountDisappeared")
	listDisappeared     = stmt("ListDisappeared")
)

// spoolChunk is the rows a spool's transaction COPYs at once.
const spoolChunk = 5000

func (s *Store) importSource(ctx context.Context, connectorID int64, path string, countsFn func() []IntakeChannel, src RowSource) (SourceResult, error) {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return SourceResult{}, err
	}
	defer conn.Close()
	n, err := spoolRows(ctx, conn, connectorID, src)
	defer func() {
		// A connection going back to the pool leaves its spool behind; one
		// that cannot drop it is closed instead.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(dctx, dropSpool); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // ErrBadConn is the point
		}
	}()
	if err != nil {
		return SourceResult{}, err
	}
	tx, _, err := beginImportOn(ctx, conn, connectorID, lockConnectorChannels)
	if err != nil {
		return SourceResult{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, untimed); err != nil {
		return SourceResult{}, err
	}
	if _, err := tx.ExecContext(ctx, stageSpool); err != nil {
		return SourceResult{}, fmt.Errorf("stage: %w", err)
	}
	channels := countsFn()
	per := map[string]*ImportResult{}
	q, err := tx.QueryContext(ctx, sourceChannelCounts, connectorID)
	if err != nil {
		return SourceResult{}, fmt.Errorf("channel counts: %w", err)
	}
	for q.Next() {
		var ch string
		var p ImportResult
		var keys int
		if err := q.Scan(&ch, &p.Rows, &p.Inserted, &p.Updated, &keys, &p.SupersededLines); err != nil {
			q.Close()
			return SourceResult{}, fmt.Errorf("channel counts: %w", err)
		}
		p.Unchanged = keys - p.Inserted - p.Updated
		per[ch] = &p
	}
	q.Close()
	if err := q.Err(); err != nil {
		return SourceResult{}, fmt.Errorf("channel counts: %w", err)
	}
	importID, _, err := reserveImportID(ctx, tx)
	if err != nil {
		return SourceResult{}, err
	}
	m, err := merge(ctx, tx.Tx, connectorID, s.path != upsertOnly, origin{kind: "source", prefix: path, importID: importID})
	if err != nil {
		return SourceResult{}, err
	}
	res := SourceResult{ImportResult: ImportResult{Rows: n, Inserted: m.inserted, Updated: m.updated,
		Unchanged: m.keys - m.inserted - m.updated, SupersededLines: m.superseded}}
	if err := recordChannelImports(ctx, tx, connectorID, importID, path, channels, per); err != nil {
		return SourceResult{}, err
	}
	// The users of this read, then those of earlier reads it has not.
	if err := tx.QueryRowContext(ctx, seeSourceUsers, connectorID).Scan(&res.Users, &res.Disappeared); err != nil {
		return SourceResult{}, fmt.Errorf("source users: %w", err)
	}
	if _, err := tx.ExecContext(ctx, markSourceRead, connectorID); err != nil {
		return SourceResult{}, fmt.Errorf("source users: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return SourceResult{}, err
	}
	return res, nil
}

// spoolRows reads src into the session's spool, checking each row as
// copyRows does, and returns the rows spooled. No transaction is open while
// src reads: only while a chunk is COPYed.
func spoolRows(ctx context.Context, conn *sqlx.Conn, connectorID int64, src RowSource) (int, error) {
	var channels []string
	err := conn.QueryRowContext(ctx, connectorChannels, connectorID).Scan((*stringArray)(&channels))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("connector id %d: %w", connectorID, ErrNoConnector)
	}
	if err != nil {
		return 0, err
	}
	// A spool left by an aborted read goes first.
	for _, q := range []string{dropSpool, createSpool} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
	}
	chunk := make([]ImportRow, 0, spoolChunk)
	rows, prevLine := 0, 0
	var failed error // the first failure of emit: it stands even if src swallows it
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := copyChunk(ctx, conn, rows-len(chunk), chunk); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		chunk = chunk[:0]
		return nil
	}
	emit := func(r ImportRow) error {
		if failed != nil {
			return failed
		}
		if err := checkRow(r, prevLine, channels); err != nil {
			failed = err
			return err
		}
		prevLine = r.Line
		chunk = append(chunk, r)
		rows++
		if len(chunk) == spoolChunk {
			if err := flush(); err != nil {
				failed = err
				return err
			}
		}
		return nil
	}
	srcErr := src(emit)
	if failed != nil {
		return 0, failed
	}
	if srcErr != nil {
		return 0, fmt.Errorf("read rows: %w", srcErr)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return rows, nil
}

// copyChunk COPYs rows (the first numbered seq) into the spool in one
// transaction.
func copyChunk(ctx context.Context, conn *sqlx.Conn, seq int, rows []ImportRow) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	err = copyStagingRows(ctx, conn, copySpool, func(w *copyWriter) error {
		for i, r := range rows {
			if err := w.staged(seq+i, r, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}

// SourceDisappeared lists (up to limit, by external id) the users that an
// earlier read of the connector's source returned and its last read did
// not, and counts all of them. Their consents are kept as they are.
func (s *Store) SourceDisappeared(ctx context.Context, connectorID int64, limit int) (int, []string, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, countDisappeared, connectorID); err != nil {
		return 0, nil, fmt.Errorf("source disappeared: %w", err)
	}
	ids := []string{}
	if err := s.db.SelectContext(ctx, &ids, listDisappeared, connectorID, limit); err != nil {
		return 0, nil, fmt.Errorf("source disappeared: %w", err)
	}
	return n, ids, nil
}
