package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// The engine's side of the store: claim a batch, save its bulk request,
// write its verdicts, recover what a dead run left. Each is one statement
// or one short transaction; none makes a round trip per record.

// batchRow is a batches row: one bulk request.
type batchRow struct {
	ID          int64              `db:"id"`
	ConnectorID int64              `db:"connector_id"`
	RunID       int64              `db:"run_id"`
	RequestID   sql.NullString     `db:"request_id"` // saved before polling
	State       consent.BatchState `db:"state"`
	Size        int                `db:"size"`
	CreatedAt   time.Time          `db:"created_at"`
	SubmittedAt sql.NullTime       `db:"submitted_at"`
	FinishedAt  sql.NullTime       `db:"finished_at"`
}

// batchItemRow is a batch_items row: a record of a batch, at the version sent.
type batchItemRow struct {
	BatchID      int64          `db:"batch_id"`
	ConsentID    int64          `db:"consent_id"`
	Version      int64          `db:"version"`
	SubrequestID sql.NullString `db:"subrequest_id"` // İYS's, once submitted
}

// The engine's statements, of sql/consents.sql and sql/batches.sql.
var (
	claimBatch       = stmt("ClaimBatch")
	saveSubmission   = stmt("SaveSubmission")
	saveSubRequest   = stmt("SaveSubRequest")
	lockBatch        = stmt("LockBatch")   // in key order (see retry.go)
	finishBatch      = stmt("FinishBatch") // guarded by batch, state and version
	closeBatch       = stmt("CloseBatch")
	countInRun       = stmt("CountInRun")
	releaseClaimed   = stmt("ReleaseClaimed") // in key order (see retry.go)
	recoverSubmitted = stmt("RecoverSubmitted")
	backlog          = stmt("Backlog")
	backlogs         = stmt("Backlogs")
)

// early is the condition of a record dated after the engine's clock (the
// parameter now) by no more than consent.MaxAhead (the parameter tol, in
// seconds): İYS refuses a date in the future, so it waits for its date. One
// dated further ahead is not waited for: the engine's pre-check refuses it.
// Statements of sql/ call it as {{early now tol}}, with their parameters'
// numbers.
func early(now, tol int) string {
	return fmt.Sprintf(`(consent_date > $%[1]d::timestamptz AND consent_date <= $%[1]d::timestamptz + make_interval(secs => $%[2]d::float8))`,
		now, tol)
}

// maxAhead is consent.MaxAhead in seconds, for early's tol.
var maxAhead = consent.MaxAhead.Seconds()

// ClaimBatch puts up to size due pending records of the connector in flight
// in a new batch of the run, oldest consent first, and returns the batch
// and its records; batchID is 0 and recs empty when nothing is due. A record
// dated after now, by no more than consent.MaxAhead, is not due before its
// date. Claims running at once (other workers, other replicas) never take
// one record twice.
func (s *Store) ClaimBatch(ctx context.Context, connectorID, runID int64, size int, now time.Time) (batchID int64, recs []consent.Record, err error) {
	return s.ClaimBatchAfter(ctx, connectorID, runID, size, now, consent.ClaimPos{})
}

// ClaimBatchAfter is ClaimBatch taking only records after pos in claim
// order (see consent.ClaimPos).
func (s *Store) ClaimBatchAfter(ctx context.Context, connectorID, runID int64, size int, now time.Time, pos consent.ClaimPos) (batchID int64, recs []consent.Record, err error) {
	if size < 1 || size > consent.MaxBulkSize {
		return 0, nil, fmt.Errorf("claim batch: size %d: want 1 to %d", size, consent.MaxBulkSize)
	}
	var rows []Record
	if err := s.db.SelectContext(ctx, &rows, claimBatch, connectorID, runID, size, now, maxAhead,
		pos.ConsentDate, pos.ID); err != nil {
		return 0, nil, fmt.Errorf("claim batch: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil, nil
	}
	recs = make([]consent.Record, len(rows))
	for i, r := range rows {
		recs[i] = r.sendable()
	}
	return rows[0].BatchID.Int64, recs, nil
}

// ErrBatchMoved says a batch was no longer in the state the caller expected:
// another run recovered it meanwhile.
var ErrBatchMoved = errors.New("batch is no longer claimed: another run recovered it")

// SaveSubmission records the bulk request of a claimed batch: its requestId
// and each sent record's subrequestId (ids[i] got subs[i]), in one
// statement, before any polling. Records of the batch not named were not
// sent (the pre-check refused them). All of it is saved, or nothing.
func (s *Store) SaveSubmission(ctx context.Context, batchID int64, requestID string, ids []int64, subs []string) error {
	if requestID == "" || len(ids) == 0 || len(ids) != len(subs) {
		return fmt.Errorf("save submission of batch %d: want a request id and one subrequest id per record (%d ids, %d subrequest ids)",
			batchID, len(ids), len(subs))
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save submission of batch %d: %w", batchID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var n int
	err = tx.GetContext(ctx, &n, saveSubmission, batchID, requestID, pq.Array(ids), pq.Array(subs))
	if err != nil {
		return fmt.Errorf("save submission of batch %d: %w", batchID, err)
	}
	if n == 0 {
		return fmt.Errorf("save submission of batch %d: %w", batchID, ErrBatchMoved)
	}
	if n != len(ids) {
		return fmt.Errorf("save submission of batch %d: %d of %d records are items of the batch", batchID, n, len(ids))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save submission of batch %d: %w", batchID, err)
	}
	return nil
}

// SaveSubRequest records a bulk request that carries some of a claimed
// batch's records: İYS refused the batch's request whole, and the records it
// did not refuse go again. The request becomes a batch of its own, submitted
// with its requestId and each record's subrequestId (ids[i] got subs[i]),
// and those records move to it, in one statement, before any polling. So a
// run that dies polls it, while the first batch's records left in flight
// (refused, or not sent yet) are handed back. All of it is saved, or
// nothing.
func (s *Store) SaveSubRequest(ctx context.Context, batchID int64, requestID string, ids []int64, subs []string) (int64, error) {
	if requestID == "" || len(ids) == 0 || len(ids) != len(subs) {
		return 0, fmt.Errorf("save sub-request of batch %d: want a request id and one subrequest id per record (%d ids, %d subrequest ids)",
			batchID, len(ids), len(subs))
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("save sub-request of batch %d: %w", batchID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var r struct {
		ID int64 `db:"id"`
		N  int   `db:"n"`
	}
	if err := tx.GetContext(ctx, &r, saveSubRequest, batchID, requestID, pq.Array(ids), pq.Array(subs)); err != nil {
		return 0, fmt.Errorf("save sub-request of batch %d: %w", batchID, err)
	}
	if r.ID == 0 {
		return 0, fmt.Errorf("save sub-request of batch %d: %w", batchID, ErrBatchMoved)
	}
	if r.N != len(ids) {
		return 0, fmt.Errorf("save sub-request of batch %d: %d of %d records are items of the batch", batchID, r.N, len(ids))
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("save sub-request of batch %d: %w", batchID, err)
	}
	return r.ID, nil
}

// FinishBatch writes the verdicts of a batch's records (one statement,
// guarded by batch, state and version, so a newer consent that arrived
// meanwhile stays pending), closes the batch as done or released, and adds
// what it wrote to the run's counters, in one transaction. sent is the
// number of the batch's records that İYS received in this run. The tally
// counts what was written; verdicts that found their record moved on are
// Stale.
func (s *Store) FinishBatch(ctx context.Context, runID, batchID int64, sent int, state consent.BatchState,
	vs []consent.Verdict) (consent.Tally, error) {
	if state != consent.BatchDone && state != consent.BatchReleased {
		return consent.Tally{}, fmt.Errorf("finish batch %d: state %q: want done or released", batchID, state)
	}
	n := len(vs)
	var (
		ids, versions                       = make([]int64, n), make([]int64, n)
		states, outcomes, codes, msgs, txns = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		tried                               = make([]bool, n)
		retryIn                             = make([]float64, n)
		byID                                = make(map[int64]int, n)
	)
	for i, v := range vs {
		if err := checkVerdict(v); err != nil {
			return consent.Tally{}, fmt.Errorf("finish batch %d: record %d: %w", batchID, v.ID, err)
		}
		if _, dup := byID[v.ID]; dup {
			return consent.Tally{}, fmt.Errorf("finish batch %d: two verdicts for record %d", batchID, v.ID)
		}
		byID[v.ID] = i
		ids[i], versions[i] = v.ID, v.Version
		states[i], outcomes[i], codes[i], msgs[i], txns[i] = string(v.State), string(v.Outcome), string(v.Code), v.Message, v.TransactionID
		tried[i] = v.Tried
		retryIn[i] = math.Max(v.RetryIn.Seconds(), 0)
	}
	args := []any{batchID, pq.Array(ids), pq.Array(versions), pq.Array(states), pq.Array(outcomes), pq.Array(codes),
		pq.Array(msgs), pq.Array(txns), pq.Array(tried), pq.Array(retryIn)}
	var t consent.Tally
	err := retry(ctx, func(int) error {
		var err error
		t, err = s.finishBatch(ctx, runID, batchID, sent, state, vs, byID, args)
		return err
	})
	if err != nil {
		return consent.Tally{}, fmt.Errorf("finish batch %d: %w", batchID, err)
	}
	return t, nil
}

// finishBatch is one try of FinishBatch's transaction; args are the
// finishBatch statement's. The records are locked first, in key order (see
// retry.go): the UPDATE's join follows no order.
func (s *Store) finishBatch(ctx context.Context, runID, batchID int64, sent int, state consent.BatchState,
	vs []consent.Verdict, byID map[int64]int, args []any) (consent.Tally, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return consent.Tally{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var written []int64
	if _, err := tx.ExecContext(ctx, lockBatch, batchID, args[1]); err != nil {
		return consent.Tally{}, fmt.Errorf("lock records: %w", err)
	}
	if err := tx.SelectContext(ctx, &written, finishBatch, args...); err != nil {
		return consent.Tally{}, fmt.Errorf("write verdicts: %w", err)
	}
	t := consent.Tally{Sent: sent, Stale: len(vs) - len(written), Outcomes: map[consent.Outcome]int{}}
	for _, id := range written {
		v := vs[byID[id]]
		switch v.State {
		case consent.StateSynced:
			t.Accepted++
			t.Outcomes[v.Outcome]++
		case consent.StateRejected:
			t.Rejected++
			t.Outcomes[v.Outcome]++
		case consent.StateFailed:
			t.Failed++
		case consent.StatePending:
			if v.Tried {
				t.Retried++
			} else {
				t.Released++
			}
		}
	}
	res, err := tx.ExecContext(ctx, closeBatch, batchID, state)
	if err != nil {
		return consent.Tally{}, err
	}
	if k, err := res.RowsAffected(); err != nil || k != 1 {
		return consent.Tally{}, ErrBatchMoved
	}
	if _, err := tx.ExecContext(ctx, countInRun, runID, t.Sent, t.Accepted, t.Rejected, t.Retried, t.Failed); err != nil {
		return consent.Tally{}, fmt.Errorf("count in run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return consent.Tally{}, err
	}
	return t, nil
}

// checkVerdict holds a verdict to docs/cli.md's table (the CHECK
// constraint would refuse the whole batch for one wrong verdict).
func checkVerdict(v consent.Verdict) error {
	switch v.State {
	case consent.StateSynced, consent.StateRejected:
		if v.Outcome == "" || v.Outcome.Synced() != (v.State == consent.StateSynced) {
			return fmt.Errorf("outcome %q does not go with state %s", v.Outcome, v.State)
		}
	case consent.StatePending, consent.StateFailed:
		if v.Outcome != "" {
			return fmt.Errorf("state %s takes no outcome (got %q)", v.State, v.Outcome)
		}
	default:
		return fmt.Errorf("state %q is not a verdict", v.State)
	}
	return nil
}

// RecoverBatches tidies what dead runs left of a connector; call it holding
// the connector's run lock. Batches claimed without a requestId (they never
// reached İYS, as far as anyone knows) are released: their records go back
// to pending at once, their tries not counted. Batches submitted with a
// requestId are returned with their items, to be polled and recorded
// instead of sent again.
func (s *Store) RecoverBatches(ctx context.Context, connectorID int64) (released int, submitted []consent.SubmittedBatch, err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("recover batches: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// The records are locked first, in key order (see retry.go).
	err = tx.GetContext(ctx, &released, releaseClaimed, connectorID)
	if err != nil {
		return 0, nil, fmt.Errorf("recover batches: release claimed: %w", err)
	}
	var rows []struct {
		Batch  batchRow     `db:"b"`
		Item   batchItemRow `db:"bi"`
		Record Record       `db:"c"`
	}
	err = tx.SelectContext(ctx, &rows, recoverSubmitted, connectorID)
	if err != nil {
		return 0, nil, fmt.Errorf("recover batches: read submitted: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("recover batches: %w", err)
	}
	for _, r := range rows {
		if n := len(submitted); n == 0 || submitted[n-1].ID != r.Batch.ID {
			submitted = append(submitted, consent.SubmittedBatch{ID: r.Batch.ID, RequestID: r.Batch.RequestID.String})
		}
		rec := r.Record.sendable()
		rec.Version = r.Item.Version // the version sent
		b := &submitted[len(submitted)-1]
		b.Items = append(b.Items, consent.SentRecord{Record: rec, SubrequestID: r.Item.SubrequestID.String})
	}
	return released, submitted, nil
}

// Backlog tells what is left of a connector's work: pending records (and
// when the first may be tried, by ClaimBatch's rule: its next try's time by
// the database's clock, and the date of one that waits for it by now) and
// records in flight.
func (s *Store) Backlog(ctx context.Context, connectorID int64, now time.Time) (consent.Backlog, error) {
	var r struct {
		Pending  int     `db:"pending"`
		InFlight int     `db:"in_flight"`
		DueIn    float64 `db:"due_in"`
	}
	err := s.db.GetContext(ctx, &r, backlog, connectorID, now, maxAhead)
	if err != nil {
		return consent.Backlog{}, fmt.Errorf("backlog: %w", err)
	}
	return consent.Backlog{Pending: r.Pending, InFlight: r.InFlight,
		NextDueIn: secondsToDuration(r.DueIn)}, nil
}

// Backlogs is Backlog of each connector of ids, by connector id, in one
// statement.
func (s *Store) Backlogs(ctx context.Context, ids []int64, now time.Time) (map[int64]consent.Backlog, error) {
	var rows []struct {
		ConnectorID int64   `db:"connector_id"`
		Pending     int     `db:"pending"`
		InFlight    int     `db:"in_flight"`
		DueIn       float64 `db:"due_in"`
	}
	if err := s.db.SelectContext(ctx, &rows, backlogs, pq.Array(ids), now, maxAhead); err != nil {
		return nil, fmt.Errorf("backlogs: %w", err)
	}
	out := make(map[int64]consent.Backlog, len(rows))
	for _, r := range rows {
		out[r.ConnectorID] = consent.Backlog{Pending: r.Pending, InFlight: r.InFlight, NextDueIn: secondsToDuration(r.DueIn)}
	}
	return out, nil
}

// secondsToDuration converts PostgreSQL's seconds, clamped to what a
// Duration holds.
func secondsToDuration(s float64) time.Duration {
	const limit = float64(math.MaxInt64 / int64(time.Second))
	switch {
	case math.IsNaN(s):
		return 0
	case s > limit:
		s = limit
	case s < -limit:
		s = -limit
	}
	return time.Duration(s * float64(time.Second))
}
