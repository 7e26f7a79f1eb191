package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// changeRow is a changes row: the table's row type (see rowTypes).
type changeRow struct {
	ID            int64          `db:"id"`
	ConnectorID   int64          `db:"connector_id"`
	XID           int64          `db:"xid"`
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
	FeedFromIYS   = "from_iys" // a record became İYS's value: a pulled change, a refreshed superseded record
	ChangeRefused = "refused"  // İYS refused the record's consent for good (state rejected)
)

// FeedChange is one entry of a connector's changes feed: the record as the
// change left it. After is its place in the feed, to read on from.
type FeedChange struct {
	ID            int64
	After         FeedPosition
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

// FeedPosition is a place in a changes feed: the zero value is its start.
// The feed is ordered by the writing transaction, then by id.
type FeedPosition struct {
	XID, ID int64
}

// changesAfter is sql/changes.sql's ChangesAfter.
var changesAfter = stmt("ChangesAfter")

// ChangesAfter reads up to limit changes of the connector after pos, in
// feed order. A change shows once the transaction that wrote it, and every
// transaction begun before it, has ended: a page never skips a change a
// later page would hold.
func (s *Store) ChangesAfter(ctx context.Context, connectorID int64, pos FeedPosition, limit int) ([]FeedChange, error) {
	var rows []changeRow
	if err := s.db.SelectContext(ctx, &rows, changesAfter, connectorID, pos.XID, pos.ID, limit); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	out := make([]FeedChange, len(rows))
	for i, r := range rows {
		out[i] = FeedChange{ID: r.ID, After: FeedPosition{r.XID, r.ID}, Kind: r.Kind, Recipient: r.Recipient,
			RecipientType: consent.RecipientType(r.RecipientType), Type: consent.Type(r.Type),
			Status: consent.Status(r.Status), ConsentDate: r.ConsentDate, Source: consent.Source(r.Source),
			Outcome: consent.Outcome(r.Outcome), IYSCode: r.IYSCode.String, IYSMessage: r.IYSMessage.String, At: r.At}
	}
	return out, nil
}
