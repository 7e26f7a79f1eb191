package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/redact"
)

// Run is one run of the sync engine over one connector: the row type of
// runs (see rowTypes).
type Run struct {
	ID          int64             `db:"id"`
	ConnectorID int64             `db:"connector_id"`
	Trigger     consent.Trigger   `db:"trigger"`
	StartedAt   time.Time         `db:"started_at"`
	FinishedAt  sql.NullTime      `db:"finished_at"`
	Status      consent.RunStatus `db:"status"`
	Sent        int               `db:"sent"`
	Accepted    int               `db:"accepted"` // synced: accepted or already in İYS
	Rejected    int               `db:"rejected"`
	Retried     int               `db:"retried"`
	Failed      int               `db:"failed"`
	Error       sql.NullString    `db:"error"`
	HeartbeatAt time.Time         `db:"heartbeat_at"`
}

// Statements of sql/runs.sql and sql/connectors.sql.
var (
	syncConnectors   = stmt("SyncConnectors")
	startRuns        = stmt("StartRuns")
	finishRuns       = stmt("FinishRuns")
	lastRun          = stmt("LastRun")
	lastFinishedRun  = stmt("LastFinishedRun")
	lastCompletedAt  = stmt("LastCompletedAt")
	runByID          = stmt("RunByID")
	unfinishedNights = stmt("UnfinishedNights")
)

// SyncConnectors lists the connectors a run serves, by brand code: all of
// them when brandCodes is nil (the engine skips paused ones), else the named
// ones, failing with ErrNoConnector on a brand that is not installed.
func (s *Store) SyncConnectors(ctx context.Context, brandCodes []string) ([]consent.ConnectorRef, error) {
	var rows []connectorRow
	err := s.db.SelectContext(ctx, &rows, syncConnectors, pq.Array(brandCodes))
	if err != nil {
		return nil, fmt.Errorf("list connectors to sync: %w", err)
	}
	out := make([]consent.ConnectorRef, len(rows))
	found := make(map[string]bool, len(rows))
	for i, r := range rows {
		out[i] = consent.ConnectorRef{ID: r.ID, BrandCode: r.BrandCode, IYSCode: r.IYSCode, Active: r.State == ConnectorActive,
			NoSource: r.SourceQuery.String == ""}
		found[r.BrandCode] = true
	}
	for _, b := range brandCodes {
		if !found[b] {
			return nil, fmt.Errorf("connector %s: %w", b, ErrNoConnector)
		}
	}
	return out, nil
}

// StartRun records the start of a run over a connector and closes the runs
// of that connector left 'running' by a process that died: the caller holds
// the connector's run lock, so none of them is alive. They are marked
// failed with the error "killed (closed by run N)".
func (s *Store) StartRun(ctx context.Context, connectorID int64, trigger consent.Trigger) (int64, error) {
	started, err := s.StartRuns(ctx, []int64{connectorID}, trigger)
	if err != nil {
		return 0, err
	}
	if len(started) != 1 {
		return 0, fmt.Errorf("start run: %d runs started for connector %d, want 1", len(started), connectorID)
	}
	return started[0].RunID, nil
}

// StartRuns is StartRun of every connector of ids, in one statement, and
// tells of each whether an earlier run left it batches to recover (see
// RecoverBatches): the caller holds the connectors' run locks, so no other
// run makes any meanwhile. The runs come in no particular order.
func (s *Store) StartRuns(ctx context.Context, ids []int64, trigger consent.Trigger) ([]consent.StartedRun, error) {
	if trigger != consent.TriggerSchedule && trigger != consent.TriggerRunNow {
		return nil, fmt.Errorf("start runs: trigger %q: want schedule or run-now", trigger)
	}
	var rows []struct {
		ConnectorID int64 `db:"connector_id"`
		RunID       int64 `db:"run_id"`
		Recover     bool  `db:"recover"`
	}
	if err := s.db.SelectContext(ctx, &rows, startRuns, pq.Array(ids), trigger); err != nil {
		return nil, fmt.Errorf("start runs: %w", err)
	}
	out := make([]consent.StartedRun, len(rows))
	for i, r := range rows {
		out[i] = consent.StartedRun{ConnectorID: r.ConnectorID, RunID: r.RunID, Recover: r.Recover}
	}
	return out, nil
}

// FinishRuns is FinishRun of each run of ends, in one statement. It
// returns the runs it could not finish: no longer running (a later run
// closed them: theirs had lost its lock).
func (s *Store) FinishRuns(ctx context.Context, ends []consent.RunEnd) (notRunning []int64, err error) {
	ids, statuses, errs := make([]int64, len(ends)), make([]string, len(ends)), make([]string, len(ends))
	for i, e := range ends {
		switch e.Status {
		case consent.RunCompleted, consent.RunPartial, consent.RunFailed:
		default:
			return nil, fmt.Errorf("finish runs: run %d: status %q: want completed, partial or failed", e.RunID, e.Status)
		}
		ids[i], statuses[i], errs[i] = e.RunID, string(e.Status), redact.String(e.Err) // status shows it
	}
	var done []int64
	if err := s.db.SelectContext(ctx, &done, finishRuns, pq.Array(ids), pq.Array(statuses), pq.Array(errs)); err != nil {
		return nil, fmt.Errorf("finish runs: %w", err)
	}
	finished := make(map[int64]bool, len(done))
	for _, id := range done {
		finished[id] = true
	}
	for _, id := range ids {
		if !finished[id] {
			notRunning = append(notRunning, id)
		}
	}
	return notRunning, nil
}

// FinishRun records how a run ended. Its counters were kept up to date by
// FinishBatch. It fails if the run is no longer running (a later run closed
// it: this one had lost its lock).
func (s *Store) FinishRun(ctx context.Context, runID int64, status consent.RunStatus, errText string) error {
	notRunning, err := s.FinishRuns(ctx, []consent.RunEnd{{RunID: runID, Status: status, Err: errText}})
	if err != nil {
		return err
	}
	if len(notRunning) > 0 {
		return fmt.Errorf("finish run %d: it is not running any more (closed by a later run?)", runID)
	}
	return nil
}

// LastRun returns the connector's latest run (running or finished); ok is
// false when it never ran.
func (s *Store) LastRun(ctx context.Context, connectorID int64) (run Run, ok bool, err error) {
	err = s.db.GetContext(ctx, &run, lastRun, connectorID)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("last run: %w", err)
	}
	return run, true, nil
}

// LastFinishedRun returns the connector's latest run that has ended
// (completed, partial or failed), for status's lastRun; ok is false when
// none has.
func (s *Store) LastFinishedRun(ctx context.Context, connectorID int64) (run Run, ok bool, err error) {
	err = s.db.GetContext(ctx, &run, lastFinishedRun, connectorID)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("last finished run: %w", err)
	}
	return run, true, nil
}

// LastCompletedAt is when the connector's latest completed run finished; ok
// is false when none has. The metrics' success clock counts from it, also
// across partial and failed runs after it.
func (s *Store) LastCompletedAt(ctx context.Context, connectorID int64) (at time.Time, ok bool, err error) {
	var t sql.NullTime
	if err := s.db.GetContext(ctx, &t, lastCompletedAt, connectorID); err != nil {
		return time.Time{}, false, fmt.Errorf("last completed run: %w", err)
	}
	return t.Time, t.Valid, nil
}

// RunByID returns one run.
func (s *Store) RunByID(ctx context.Context, runID int64) (Run, error) {
	var run Run
	if err := s.db.GetContext(ctx, &run, runByID, runID); err != nil {
		return Run{}, fmt.Errorf("run %d: %w", runID, err)
	}
	return run, nil
}

// UnfinishedNights tells which active connectors have not finished the
// night the schedule began at tick, and why: none of their runs started
// since tick ended completed or partial (partial is a run that went to its
// end and left work for later, not one to repeat). A connector whose first
// sync comes after tick has no night yet; one whose run lock a live session
// holds is being run (here or by another replica), so it is not listed. The reason is for the log: no run
// since the tick, or the latest run's status and error.
func (s *Store) UnfinishedNights(ctx context.Context, tick time.Time) (map[string]string, error) {
	var rows []struct {
		BrandCode string         `db:"brand_code"`
		RunID     sql.NullInt64  `db:"run_id"`
		Status    sql.NullString `db:"status"`
		Error     sql.NullString `db:"error"`
	}
	err := s.db.SelectContext(ctx, &rows, unfinishedNights, tick, connectorLockClass)
	if err != nil {
		return nil, fmt.Errorf("unfinished nights: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		switch {
		case !r.RunID.Valid:
			out[r.BrandCode] = "no run since the schedule fired"
		case r.Status.String == string(consent.RunRunning):
			out[r.BrandCode] = fmt.Sprintf("run %d is still marked running, and no one holds its lock: its process stopped", r.RunID.Int64)
		default:
			out[r.BrandCode] = fmt.Sprintf("run %d %s: %s", r.RunID.Int64, r.Status.String, r.Error.String)
		}
	}
	return out, nil
}

// BrandRun is a run with its connector's brand code.
type BrandRun struct {
	Run       `db:"r"`
	BrandCode string `db:"brand_code"`
}

var runHistory = stmt("RunHistory")

// Runs lists runs newest first, at most limit: of a brand's connector, or
// of every connector when brandCode is "". A brand that is not installed
// fails with ErrNoConnector.
func (s *Store) Runs(ctx context.Context, brandCode string, limit int) ([]BrandRun, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list runs: limit %d: want 1 or more", limit)
	}
	if brandCode != "" {
		if _, err := s.Connector(ctx, brandCode); err != nil {
			return nil, err
		}
	}
	var out []BrandRun
	if err := s.db.SelectContext(ctx, &out, runHistory, brandCode, limit); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}
