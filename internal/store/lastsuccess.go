package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// LastCompletedAt is when the connector's latest completed run finished; ok
// is false when none has. The metrics' success clock counts from it, also
// across partial and failed runs after it.
func (s *Store) LastCompletedAt(ctx context.Context, connectorID int64) (at time.Time, ok bool, err error) {
	var t sql.NullTime
	if err := s.db.GetContext(ctx, &t, `
		SELECT max(finished_at) FROM runs WHERE connector_id = $1 AND status = 'completed'`, connectorID); err != nil {
		return time.Time{}, false, fmt.Errorf("last completed run: %w", err)
	}
	return t.Time, t.Valid, nil
}
