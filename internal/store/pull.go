package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Change is one entry of İYS's changes feed, its recipient normalised to our
// records' form.
type Change struct {
	Recipient     string
	RecipientType consent.RecipientType
	Type          consent.Type
	Status        consent.Status
	ConsentDate   consent.Date
	Source        consent.Source // IYS_* for a citizen's change, HS_* for the brand's own
	TransactionID string
	CreationDate  consent.Date // when İYS recorded it; zero if unknown
}

// PullCursor is where a connector's pull of one feed source stands.
type PullCursor struct {
	Source   string // "IYS" or "HS"
	After    string // İYS's opaque cursor, as İYS returned it; "" before the first page
	PulledAt time.Time
	Applied  int64 // changes applied in all
	// CompleteAt is when a pull last reached the feed's end (zero: never).
	CompleteAt time.Time
}

// pullCursorRow is a pull_cursors row: the table's row type (see rowTypes).
type pullCursorRow struct {
	ConnectorID int64        `db:"connector_id"`
	Source      string       `db:"source"`
	After       string       `db:"after"`
	PulledAt    sql.NullTime `db:"pulled_at"`
	Applied     int64        `db:"applied"`
	CompleteAt  sql.NullTime `db:"complete_at"`
}

func (r pullCursorRow) cursor() PullCursor {
	return PullCursor{Source: r.Source, After: r.After, PulledAt: r.PulledAt.Time, Applied: r.Applied,
		CompleteAt: r.CompleteAt.Time}
}

// The pull's statements, of sql/pull_cursors.sql, sql/consents.sql and sql/connectors.sql.
var (
	pullCursors      = stmt("PullCursors")
	storeCursor      = stmt("StoreCursor")
	resetPullCursors = stmt("ResetPullCursors")
	applyChanges     = stmt("ApplyChanges") // newest-wins, in key order
	lockConnector    = stmt("LockConnector")
)

// feedSources are the changes feed's two sources, each with its cursor.
var feedSources = []string{"IYS", "HS"}

// PullCompleteAt is when the connector's pull last reached the end of both
// feed sources (the older of their two times): every change İYS made
// before it is in our records. Zero until both have reached it once.
func PullCompleteAt(cursors map[string]PullCursor) time.Time {
	var at time.Time
	for _, src := range feedSources {
		c := cursors[src].CompleteAt
		if c.IsZero() {
			return time.Time{}
		}
		if at.IsZero() || c.Before(at) {
			at = c
		}
	}
	return at
}

// FeedPage is one page of a connector's changes feed as the pull stores it.
type FeedPage struct {
	Source      string // "IYS" or "HS"
	After       string // the cursor that follows the page; "" keeps the stored one
	Changes     []Change
	Quarantined []Quarantined // the page's entries that could not be read
	End         bool          // the page reached the feed's end: the source's CompleteAt becomes now
}

// PullCursors returns the connector's cursors, by source; a source never
// pulled is absent.
func (s *Store) PullCursors(ctx context.Context, connectorID int64) (map[string]PullCursor, error) {
	var rows []pullCursorRow
	if err := s.db.SelectContext(ctx, &rows, pullCursors, connectorID); err != nil {
		return nil, fmt.Errorf("read pull cursors: %w", err)
	}
	out := make(map[string]PullCursor, len(rows))
	for _, r := range rows {
		out[r.Source] = r.cursor()
	}
	return out, nil
}

// ApplyChanges applies one page of the feed, keeps its unreadable entries
// in quarantine and stores the cursor that follows it, all in the same
// transaction, so that a crash between pages neither skips nor applies
// twice: the next pull starts after the last page stored. An empty after
// keeps the stored cursor. It returns how many records the page changed.
func (s *Store) ApplyChanges(ctx context.Context, connectorID int64, page FeedPage) (int, error) {
	n, err := s.applyChanges(ctx, connectorID, page)
	if err != nil {
		return 0, fmt.Errorf("apply İYS changes: %w", err)
	}
	return n, nil
}

func (s *Store) applyChanges(ctx context.Context, connectorID int64, page FeedPage) (int, error) {
	if page.Source != "IYS" && page.Source != "HS" {
		return 0, fmt.Errorf("source %q: want IYS or HS", page.Source)
	}
	if len(page.Changes) == 0 && len(page.Quarantined) == 0 {
		// Nothing to apply (an idle connector's page, the feed's end): the
		// cursor alone, one statement, no transaction. Its foreign key
		// takes the connector's key lock as the transaction would.
		if _, err := s.db.ExecContext(ctx, storeCursor, connectorID, page.Source, page.After, 0, page.End); err != nil {
			if pq.As(err, pqerror.ForeignKeyViolation) != nil {
				return 0, fmt.Errorf("connector id %d: %w", connectorID, ErrNoConnector)
			}
			return 0, fmt.Errorf("store cursor: %w", err)
		}
		return 0, nil
	}
	return s.applyInTx(ctx, connectorID, "iys", page.Changes, func(tx *sqlx.Tx, applied int) error {
		if err := quarantine(ctx, tx, connectorID, page.Source, page.Quarantined); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, storeCursor, connectorID, page.Source, page.After, applied, page.End); err != nil {
			return fmt.Errorf("store cursor: %w", err)
		}
		return nil
	})
}

// ResetPullCursors forgets the connector's feed cursors, so that its next
// pull starts at the beginning of the days İYS keeps (newest-wins makes the
// changes read again harmless). The way out when İYS refuses a stored
// cursor. It reports how many cursors it reset.
func (s *Store) ResetPullCursors(ctx context.Context, connectorID int64) (int, error) {
	res, err := s.db.ExecContext(ctx, resetPullCursors, connectorID)
	if err != nil {
		return 0, fmt.Errorf("reset pull cursors: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("reset pull cursors: %w", err)
	}
	return int(n), nil
}

// applyInTx applies changes newest-wins in one transaction that holds the
// connector's key lock (what a foreign key check would take: see the
// package doc), then runs then (the pull stores its cursor there), and
// commits; the whole transaction again after a conflict (see retry). It
// returns how many records changed. kind names the changes' events ("iys",
// "reconcile").
//
// The changes go at most applyChunk a statement: applyChanges looks up
// each updated record's change in its chunk (its creation date, for the
// event), which costs the square of the chunk. Each statement locks its
// chunk in key order; the chunks are sorted by key in Go's byte order,
// which the database's collation may not share, so a deadlock with another
// writer across two chunks is possible, and retried (see retry). A key in
// two chunks is judged newest-wins by the second against what the first
// wrote. A pull's page fits one chunk.
func (s *Store) applyInTx(ctx context.Context, connectorID int64, kind string, changes []Change, then func(tx *sqlx.Tx, applied int) error) (int, error) {
	changes = slices.Clone(changes)
	slices.SortStableFunc(changes, func(a, b Change) int {
		return cmp.Or(strings.Compare(a.Recipient, b.Recipient), strings.Compare(string(a.RecipientType), string(b.RecipientType)),
			strings.Compare(string(a.Type), string(b.Type)))
	})
	var chunks [][]any
	for c := range slices.Chunk(changes, applyChunk) {
		args, err := applyChangesArgs(connectorID, kind, c)
		if err != nil {
			return 0, err
		}
		chunks = append(chunks, args)
	}
	var applied int
	err := retry(ctx, func(int) error {
		var err error
		applied, err = s.applyOnce(ctx, connectorID, chunks, then)
		return err
	})
	return applied, err
}

// applyChunk is the most changes one applyChanges statement takes.
const applyChunk = 1000

// applyOnce is one try of applyInTx.
func (s *Store) applyOnce(ctx context.Context, connectorID int64, chunks [][]any, then func(tx *sqlx.Tx, applied int) error) (int, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var id int64
	if err := tx.QueryRowContext(ctx, lockConnector, connectorID).Scan(&id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("connector id %d: %w", connectorID, ErrNoConnector)
		}
		return 0, err
	}
	applied := 0
	for _, args := range chunks {
		var n int
		if err := tx.QueryRowContext(ctx, applyChanges, args...).Scan(&n); err != nil {
			return 0, err
		}
		applied += n
	}
	if then != nil {
		if err := then(tx, applied); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return applied, nil
}

// applyChangesArgs are applyChanges' arguments for a connector's changes
// (shared with the reconciliation's repair, see reconcile.go).
func applyChangesArgs(connectorID int64, kind string, changes []Change) ([]any, error) {
	n := len(changes)
	recipients, rtypes, types, statuses := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	sources, txIDs, dates := make([]string, n), make([]string, n), make([]time.Time, n)
	created := make([]sql.NullTime, n)
	for i, c := range changes {
		if c.Recipient == "" || c.ConsentDate.IsZero() {
			return nil, errors.New("a change without recipient or date")
		}
		recipients[i], rtypes[i], types[i], statuses[i] = c.Recipient, string(c.RecipientType), string(c.Type), string(c.Status)
		sources[i], txIDs[i], dates[i] = string(c.Source), c.TransactionID, c.ConsentDate.Time()
		if !c.CreationDate.IsZero() {
			created[i] = sql.NullTime{Time: c.CreationDate.Time(), Valid: true}
		}
	}
	return []any{connectorID, pq.Array(recipients), pq.Array(rtypes), pq.Array(types),
		pq.Array(statuses), pq.Array(dates), pq.Array(sources), pq.Array(txIDs), kind, pq.Array(created)}, nil
}
