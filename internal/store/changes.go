package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// changeRow is a changes row: the table's row type (see rowTypes).
type changeRow struct {
	ID            int64          `db:"id"`
	ConnectorID   int64          `db:"connector_id"`
	Pos           sql.NullInt64  `db:"pos"`
	ConsentID     int64          `db:"consent_id"`
	Kind          string         `db:"kind"`
	Recipient     string         `db:"recipient"`
	RecipientType string         `db:"recipient_type"`
	Type          string         `db:"type"`
	Status        string         `db:"status"`
	ConsentDate   consent.Date   `db:"consent_date"`
	Source        string         `db:"source"`
	Outcome       string         `db:"outcome"`
	IYSCode       sql.NullString `db:"iys_code"`
	IYSMessage    sql.NullString `db:"iys_message"`
	At            time.Time      `db:"at"`
}

// Kinds of FeedChange.
const (
	FeedFromIYS = "from_iys" // a record became İYS's value: a pulled change, a refreshed superseded record
	FeedRefused = "refused"  // İYS refused the record's consent for good (state rejected)
)

// FeedChange is one entry of a connector's changes feed: the record as the
// change left it. Pos is its place in the feed, 1, 2, ..., to read on from.
type FeedChange struct {
	ID            int64
	Pos           int64
	Kind          string
	Recipient     string
	RecipientType consent.RecipientType
	Type          consent.Type
	Status        consent.Status
	ConsentDate   consent.Date
	Source        consent.Source
	Outcome       consent.Outcome
	IYSCode       string
	IYSMessage    string
	At            time.Time
}

// feedLockClass is the first key of the two-key advisory locks that let one
// reader at a time place a connector's changes ("iysf"); the second is the
// connector id. connectorLockClass's locks are another key space.
const feedLockClass int32 = 0x6979_7366

// sql/changes.sql's statements.
var (
	hasUnplacedChanges = stmt("HasUnplacedChanges")
	lockFeed           = stmt("LockFeed")
	placeChanges       = stmt("PlaceChanges")
	changesAfter       = stmt("ChangesAfter")
)

// ChangesAfter reads up to limit changes of the connector placed after pos
// (0: from the start), in feed order. It first places the changes
// committed since the last read after every change already placed, so that
// a change whose transaction ended late comes after those read before it,
// never among them: a reader that goes on from its last place misses none
// and gets none twice.
func (s *Store) ChangesAfter(ctx context.Context, connectorID, pos int64, limit int) ([]FeedChange, error) {
	if connectorID > math.MaxInt32 {
		return nil, fmt.Errorf("read changes: connector id %d is beyond the feed lock's range", connectorID)
	}
	if err := s.placeChanges(ctx, connectorID); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	var rows []changeRow
	if err := s.db.SelectContext(ctx, &rows, changesAfter, connectorID, pos, limit); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	out := make([]FeedChange, len(rows))
	for i, r := range rows {
		out[i] = FeedChange{ID: r.ID, Pos: r.Pos.Int64, Kind: r.Kind, Recipient: r.Recipient,
			RecipientType: consent.RecipientType(r.RecipientType), Type: consent.Type(r.Type),
			Status: consent.Status(r.Status), ConsentDate: r.ConsentDate, Source: consent.Source(r.Source),
			Outcome: consent.Outcome(r.Outcome), IYSCode: r.IYSCode.String, IYSMessage: r.IYSMessage.String, At: r.At}
	}
	return out, nil
}

// placeChanges gives the connector's committed changes without a place
// theirs, one reader at a time; nothing when there are none (the usual
// case of a reader polling).
func (s *Store) placeChanges(ctx context.Context, connectorID int64) error {
	var unplaced bool
	if err := s.db.GetContext(ctx, &unplaced, hasUnplacedChanges, connectorID); err != nil || !unplaced {
		return err
	}
	return retry(ctx, func(int) error {
		tx, err := s.db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		if _, err := tx.ExecContext(ctx, lockFeed, feedLockClass, connectorID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, placeChanges, connectorID); err != nil {
			return err
		}
		return tx.Commit()
	})
}
