package store

import (
	"context"
	"fmt"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Superseded is a record İYS refused because it holds a newer consent.
type Superseded struct {
	ID            int64                 `db:"id"`
	Version       int64                 `db:"version"`
	Recipient     string                `db:"recipient"`
	RecipientType consent.RecipientType `db:"recipient_type"`
	Type          consent.Type          `db:"type"`
}

// SupersededRecords lists up to limit of the connector's superseded
// records, the longest-waiting first.
func (s *Store) SupersededRecords(ctx context.Context, connectorID int64, limit int) ([]Superseded, error) {
	var out []Superseded
	if err := s.db.SelectContext(ctx, &out, `
		SELECT id, version, recipient, recipient_type, type FROM consents
		WHERE connector_id = $1 AND state = 'rejected' AND outcome = 'superseded'
		ORDER BY updated_at, id LIMIT $2`, connectorID, limit); err != nil {
		return nil, fmt.Errorf("list superseded records: %w", err)
	}
	return out, nil
}

// ReplaceFromIYS makes a superseded record show what İYS holds: İYS's
// status, date and source, synced, outcome from_iys. It is written only if
// the record is still that version and still superseded; false otherwise
// (a newer consent arrived meanwhile, and goes to İYS).
func (s *Store) ReplaceFromIYS(ctx context.Context, id, version int64, c Change) (bool, error) {
	res, err := s.db.ExecContext(ctx, `
		UPDATE consents SET status = $3, consent_date = $4, source = $5, transaction_id = $6,
		       version = version + 1, state = 'synced', outcome = 'from_iys', iys_code = NULL, iys_message = NULL,
		       updated_at = now(), synced_at = now()
		WHERE id = $1 AND version = $2 AND state = 'rejected' AND outcome = 'superseded'`,
		id, version, c.Status, c.ConsentDate, c.Source, c.TransactionID)
	if err != nil {
		return false, fmt.Errorf("refresh a superseded record: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("refresh a superseded record: %w", err)
	}
	return n == 1, nil
}
