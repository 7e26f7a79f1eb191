package store

import (
	"context"
	"fmt"
	"time"
)

// pendingGivenBefore is sql/consents.sql's PendingGivenBefore.
var pendingGivenBefore = stmt("PendingGivenBefore")

// PendingGivenBefore counts the connector's pending records whose consent
// was given before t, HS_2015 aside (İYS takes those whatever their age):
// with t = consent.OldestAcceptable(moment) they are too old at that moment.
func (s *Store) PendingGivenBefore(ctx context.Context, connectorID int64, t time.Time) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, pendingGivenBefore, connectorID, t); err != nil {
		return 0, fmt.Errorf("count records past the deadline: %w", err)
	}
	return n, nil
}
