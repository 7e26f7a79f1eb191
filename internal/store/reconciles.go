package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/iys-sync/iys-sync/internal/redact"
)

// Reconcile is one reconciliation of a connector's day with İYS's daily
// files: the row type of reconciles (see rowTypes).
type Reconcile struct {
	ID                int64          `db:"id"`
	ConnectorID       int64          `db:"connector_id"`
	Day               time.Time      `db:"day"` // the Türkiye day, as a date (midnight UTC)
	Mode              string         `db:"mode"`
	Trigger           string         `db:"trigger"`
	Result            string         `db:"result"`
	MissingHere       int            `db:"missing_here"`
	StatusDiffers     int            `db:"status_differs"`
	OnlyHereSynced    int            `db:"only_here_synced"`
	OursNewerUnsent   int            `db:"ours_newer_unsent"`
	OursNewerRejected int            `db:"ours_newer_rejected"`
	SummaryMismatches int            `db:"summary_mismatches"`
	Repaired          int            `db:"repaired"`
	Unrepaired        int            `db:"unrepaired"`
	Error             sql.NullString `db:"error"`
	FinishedAt        time.Time      `db:"finished_at"`
}

// Results and modes of a reconciliation (migration 0008).
const (
	ReconcileDone    = "done"
	ReconcileFailed  = "failed"
	ReconcileNoRight = "no_right" // İYS refused: no reconciliation right for the brand

	ReconcileReport = "report"
	ReconcileRepair = "repair"

	ReconcileBySchedule = "schedule"
	ReconcileByCommand  = "command"
)

// DayString is the reconciled day as YYYY-MM-DD.
func (r Reconcile) DayString() string { return r.Day.UTC().Format("2006-01-02") }

// Statements of sql/reconciles.sql.
var (
	insertReconcile = stmt("InsertReconcile")
	lastReconcile   = stmt("LastReconcile")
)

// RecordReconcile stores a reconciliation (day as YYYY-MM-DD) and returns it
// as stored. Its error text is scrubbed of secrets.
func (s *Store) RecordReconcile(ctx context.Context, r Reconcile, day string) (Reconcile, error) {
	var out Reconcile
	err := retry(ctx, func(int) error {
		return s.db.GetContext(ctx, &out, insertReconcile, r.ConnectorID, day, r.Mode, r.Trigger, r.Result,
			r.MissingHere, r.StatusDiffers, r.OnlyHereSynced, r.OursNewerUnsent, r.OursNewerRejected,
			r.SummaryMismatches, r.Repaired, r.Unrepaired, redact.String(r.Error.String))
	})
	if err != nil {
		return Reconcile{}, fmt.Errorf("record reconciliation of %s: %w", day, err)
	}
	return out, nil
}

// LastReconcile returns the connector's latest reconciliation; ok is false
// when it has none.
func (s *Store) LastReconcile(ctx context.Context, connectorID int64) (r Reconcile, ok bool, err error) {
	err = s.db.GetContext(ctx, &r, lastReconcile, connectorID)
	if errors.Is(err, sql.ErrNoRows) {
		return Reconcile{}, false, nil
	}
	if err != nil {
		return Reconcile{}, false, fmt.Errorf("last reconciliation: %w", err)
	}
	return r, true, nil
}
