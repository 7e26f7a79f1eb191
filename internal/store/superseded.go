package store

import (
	"context"
	"fmt"
)

// Statements of sql/consents.sql.
var (
	supersededRecords = stmt("SupersededRecords")
	replaceFromIYS    = stmt("ReplaceFromIYS")
)

// SupersededRecords lists up to limit of the connector's records that İYS
// refused because it holds a newer consent (rejected, outcome superseded),
// the longest-waiting first.
func (s *Store) SupersededRecords(ctx context.Context, connectorID int64, limit int) ([]Record, error) {
	var out []Record
	if err := s.db.SelectContext(ctx, &out, supersededRecords, connectorID, limit); err != nil {
		return nil, fmt.Errorf("list superseded records: %w", err)
	}
	return out, nil
}

// ReplaceFromIYS makes a superseded record show what İYS holds: İYS's
// status, date and source, synced, outcome from_iys. It is written only if
// the record is still that version and still superseded; false otherwise
// (a newer consent arrived meanwhile, and goes to İYS).
func (s *Store) ReplaceFromIYS(ctx context.Context, id, version int64, c Change) (bool, error) {
	res, err := s.db.ExecContext(ctx, replaceFromIYS, id, version, c.Status, c.ConsentDate, c.Source, c.TransactionID)
	if err != nil {
		return false, fmt.Errorf("refresh a superseded record: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("refresh a superseded record: %w", err)
	}
	return n == 1, nil
}
