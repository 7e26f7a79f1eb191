package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// redriveRow is a redrives row: one redrive of a connector's records, the
// table's row type (see rowTypes).
type redriveRow struct {
	ID          int64          `db:"id"`
	ConnectorID int64          `db:"connector_id"`
	Operator    string         `db:"operator"`
	RedrivenAt  time.Time      `db:"redriven_at"`
	States      pq.StringArray `db:"states"`
	Outcomes    pq.StringArray `db:"outcomes"`
	Since       sql.NullTime   `db:"since"`
	Requeued    int            `db:"requeued"`
}

// Statements of sql/consents.sql and sql/redrives.sql.
var (
	redrive       = stmt("Redrive")
	recordRedrive = stmt("RecordRedrive")
	redrivesOf    = stmt("Redrives")
)

// RedriveFilter picks the records a redrive puts back to pending.
type RedriveFilter struct {
	States   []consent.State   // failed, rejected or both; none: both
	Outcomes []consent.Outcome // rejected outcomes only; none: every one
	Since    time.Time         // verdicts written at this time or later; zero: any time
}

// FilterError is a redrive filter that selects what no redrive may take.
type FilterError struct{ Msg string }

func (e *FilterError) Error() string { return e.Msg }

// check fills the default states and holds the filter to what a redrive
// may take: failed records, and rejected ones by outcome.
func (f RedriveFilter) check() (RedriveFilter, error) {
	if len(f.States) == 0 {
		f.States = []consent.State{consent.StateFailed, consent.StateRejected}
	}
	for _, s := range f.States {
		if s != consent.StateFailed && s != consent.StateRejected {
			return f, &FilterError{fmt.Sprintf("state %q: only failed or rejected records are redriven", s)}
		}
	}
	for _, o := range f.Outcomes {
		if !slices.Contains(consent.Outcomes, o) || o.Synced() {
			return f, &FilterError{fmt.Sprintf("outcome %q is not one of a rejected record: %s", o, rejectedOutcomes())}
		}
	}
	if len(f.Outcomes) > 0 && !slices.Contains(f.States, consent.StateRejected) {
		return f, &FilterError{"outcomes select rejected records: they do not go with the state failed alone"}
	}
	return f, nil
}

// rejectedOutcomes lists the outcomes of rejected records.
func rejectedOutcomes() string {
	var out []string
	for _, o := range consent.Outcomes {
		if !o.Synced() {
			out = append(out, string(o))
		}
	}
	return strings.Join(out, ", ")
}

// Redriven is what a redrive matched: per outcome (a failed record counts
// under "failed"), and all of them.
type Redriven struct {
	Matched   int
	ByOutcome map[string]int
}

// Redrive puts a connector's failed or rejected records that match f back
// to pending, due at once with their tries reset and their version bumped
// (so that no answer to an earlier send is written over them), and records
// who did it (operator), when, with what filter and how many, all in one
// transaction. dryRun counts the same records and changes nothing.
func (s *Store) Redrive(ctx context.Context, connectorID int64, f RedriveFilter, operator string, dryRun bool) (Redriven, error) {
	f, err := f.check()
	if err != nil {
		return Redriven{}, fmt.Errorf("redrive: %w", err)
	}
	if operator == "" {
		return Redriven{}, fmt.Errorf("redrive: who redrives is required")
	}
	states, outcomes := make(pq.StringArray, len(f.States)), pq.StringArray{}
	for i, st := range f.States {
		states[i] = string(st)
	}
	for _, o := range f.Outcomes {
		outcomes = append(outcomes, string(o))
	}
	since := sql.NullTime{Time: f.Since, Valid: !f.Since.IsZero()}
	var out Redriven
	err = retry(ctx, func(int) error {
		var err error
		out, err = s.redrive(ctx, connectorID, states, outcomes, since, operator, dryRun)
		return err
	})
	if err != nil {
		return Redriven{}, fmt.Errorf("redrive: %w", err)
	}
	return out, nil
}

// redrive is one try of Redrive's transaction. A dry run makes the same
// change and rolls it back: it counts exactly what a redrive would.
func (s *Store) redrive(ctx context.Context, connectorID int64, states, outcomes pq.StringArray, since sql.NullTime,
	operator string, dryRun bool) (Redriven, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Redriven{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var rows []struct {
		Outcome string        `db:"outcome"`
		N       int           `db:"n"`
		IDs     pq.Int64Array `db:"ids"`
	}
	if err := tx.SelectContext(ctx, &rows, redrive, connectorID, states, outcomes, since); err != nil {
		return Redriven{}, err
	}
	out := Redriven{ByOutcome: map[string]int{}}
	var ids []int64
	for _, r := range rows {
		out.ByOutcome[r.Outcome] = r.N
		out.Matched += r.N
		ids = append(ids, r.IDs...)
	}
	if dryRun {
		return out, nil
	}
	origin := "redrive:" + operator + ":" + redriveFilterText(states, outcomes, since)
	if _, err := recordEvents(ctx, tx, EventRedrive, origin, ids); err != nil {
		return Redriven{}, err
	}
	if _, err := tx.ExecContext(ctx, recordRedrive, connectorID, operator, states, outcomes, since, out.Matched); err != nil {
		return Redriven{}, fmt.Errorf("record the redrive: %w", err)
	}
	return out, tx.Commit()
}

// Redrive is one recorded redrive.
type Redrive struct {
	Operator   string
	RedrivenAt time.Time
	Filter     RedriveFilter
	Requeued   int
}

// Redrives lists a connector's redrives, oldest first.
func (s *Store) Redrives(ctx context.Context, connectorID int64) ([]Redrive, error) {
	var rows []redriveRow
	if err := s.db.SelectContext(ctx, &rows, redrivesOf, connectorID); err != nil {
		return nil, fmt.Errorf("list redrives: %w", err)
	}
	out := make([]Redrive, len(rows))
	for i, r := range rows {
		d := Redrive{Operator: r.Operator, RedrivenAt: r.RedrivenAt, Requeued: r.Requeued, Filter: RedriveFilter{Since: r.Since.Time}}
		for _, st := range r.States {
			d.Filter.States = append(d.Filter.States, consent.State(st))
		}
		for _, o := range r.Outcomes {
			d.Filter.Outcomes = append(d.Filter.Outcomes, consent.Outcome(o))
		}
		out[i] = d
	}
	return out, nil
}

// redriveFilterText is a redrive's filter as its events' origin names it:
// state=rejected,failed;outcome=invalid;since=2026-11-01.
func redriveFilterText(states, outcomes pq.StringArray, since sql.NullTime) string {
	parts := []string{"state=" + strings.Join(states, ",")}
	if len(outcomes) > 0 {
		parts = append(parts, "outcome="+strings.Join(outcomes, ","))
	}
	if since.Valid {
		parts = append(parts, "since="+since.Time.Format(time.DateOnly))
	}
	return strings.Join(parts, ";")
}
