package store

import (
	"context"
	"fmt"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Statements of sql/consents.sql.
var (
	countByState = stmt("CountByState")
	notYetDue    = stmt("NotYetDue")
)

// StateCounts counts a connector's records by state; every state is present.
type StateCounts map[consent.State]int

// OutcomeCounts counts a connector's records by outcome; every outcome is present.
type OutcomeCounts map[consent.Outcome]int

// Counts tells how many records of the connector are in each state and have
// each outcome, for status.
func (s *Store) Counts(ctx context.Context, connectorID int64) (StateCounts, OutcomeCounts, error) {
	var groups []struct {
		State   string  `db:"state"`
		Outcome *string `db:"outcome"`
		N       int     `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &groups, countByState, connectorID); err != nil {
		return nil, nil, fmt.Errorf("count records: %w", err)
	}
	states := make(StateCounts, len(consent.States))
	for _, st := range consent.States {
		states[st] = 0
	}
	outcomes := make(OutcomeCounts, len(consent.Outcomes))
	for _, o := range consent.Outcomes {
		outcomes[o] = 0
	}
	for _, g := range groups {
		states[consent.State(g.State)] += g.N
		if g.Outcome != nil {
			outcomes[consent.Outcome(*g.Outcome)] += g.N
		}
	}
	return states, outcomes, nil
}

// NotYetDue counts the connector's pending records that a run would not
// send yet: dated a little after now (İYS refuses a date in the future: they
// wait for their date), or waiting for a retry's delay.
func (s *Store) NotYetDue(ctx context.Context, connectorID int64, now time.Time) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, notYetDue, connectorID, now, maxAhead); err != nil {
		return 0, fmt.Errorf("count records not yet due: %w", err)
	}
	return n, nil
}
