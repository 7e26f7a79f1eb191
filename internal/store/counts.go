package store

import (
	"context"
	"fmt"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Statements of sql/consents.sql.
var (
	countByState  = stmt("CountByState")
	compactCounts = stmt("CompactCounts")
	notYetDue     = stmt("NotYetDue")
)

// countRow is a consent_counts row: one delta of a connector's kept counts
// (the table's row type, see rowTypes).
type countRow struct {
	ConnectorID int64      `db:"connector_id"`
	State       string     `db:"state"`
	Outcome     *string    `db:"outcome"`
	PendingDay  *time.Time `db:"pending_day"`
	N           int64      `db:"n"`
}

// countsLockClass keys the advisory lock of a connector's count compaction
// ("iysc"), so that two compactions of one connector never run at once.
const countsLockClass int32 = 0x6979_7363

// compactAbove is how many delta rows of a connector a read sums before it
// folds them: reads stay a few hundred rows, whatever the traffic.
const compactAbove = 512

// StateCounts counts a connector's records by state; every state is present.
type StateCounts map[consent.State]int

// OutcomeCounts counts a connector's records by outcome; every outcome is present.
type OutcomeCounts map[consent.Outcome]int

// Counts tells how many records of the connector are in each state and have
// each outcome, for status, from the kept counts (no scan of the records).
func (s *Store) Counts(ctx context.Context, connectorID int64) (StateCounts, OutcomeCounts, error) {
	var groups []struct {
		State   string  `db:"state"`
		Outcome *string `db:"outcome"`
		N       int     `db:"n"`
		Rows    int     `db:"rows"`
	}
	if err := s.db.SelectContext(ctx, &groups, countByState, connectorID); err != nil {
		return nil, nil, fmt.Errorf("count records: %w", err)
	}
	rows := 0
	for _, g := range groups {
		rows += g.Rows
	}
	if rows > compactAbove {
		if err := s.CompactCounts(ctx, connectorID); err != nil {
			return nil, nil, err
		}
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

// CompactCounts folds the connector's count deltas into one row per key;
// it does nothing while another session compacts them.
func (s *Store) CompactCounts(ctx context.Context, connectorID int64) error {
	if _, err := s.db.ExecContext(ctx, compactCounts, connectorID, countsLockClass); err != nil {
		return fmt.Errorf("compact counts: %w", err)
	}
	return nil
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
