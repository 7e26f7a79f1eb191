package store

import (
	"context"
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

// claimBatch takes the oldest due pending records of a connector, at most
// $3, skipping those another claim holds, and makes them one batch, in one
// statement: the batch row, the records in flight in it, and its items with
// the versions claimed. The consents key (connector, recipient, recipient
// type, type) is unique, so a batch never holds a key twice.
//
// A record is due once its next try's time (written with the database's
// clock) has come, unless it waits for its date (see early).
var claimBatch = `
WITH picked AS (
    SELECT id FROM consents
    WHERE connector_id = $1 AND state = 'pending' AND next_attempt_at <= now() AND NOT ` + early(4, 5) + `
    ORDER BY consent_date, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
),
batch AS (
    INSERT INTO batches (connector_id, run_id, size)
    SELECT $1, $2, count(*) FROM picked HAVING count(*) > 0
    RETURNING id
),
claimed AS (
    UPDATE consents c SET state = 'in_flight', batch_id = batch.id, updated_at = now()
    FROM picked, batch
    WHERE c.id = picked.id
    RETURNING c.id, c.connector_id, c.version, c.recipient, c.recipient_type, c.type, c.status,
              c.consent_date, c.source, c.external_id, c.attempts, batch.id AS batch_id
),
items AS (
    INSERT INTO batch_items (batch_id, consent_id, version)
    SELECT batch_id, id, version FROM claimed
)
SELECT * FROM claimed ORDER BY consent_date, id`

// early is the condition of a record dated after the engine's clock (the
// parameter now) by no more than consent.MaxAhead (the parameter tol, in
// seconds): İYS refuses a date in the future, so it waits for its date. One
// dated further ahead is not waited for: the engine's pre-check refuses it.
func early(now, tol int) string {
	return fmt.Sprintf(`(consent_date > $%[1]d::timestamptz AND consent_date <= $%[1]d::timestamptz + make_interval(secs => $%[2]d::float8))`,
		now, tol)
}

// maxAhead is consent.MaxAhead in seconds, for early's tol.
var maxAhead = consent.MaxAhead.Seconds()

// recordRow is a consent record as the engine reads it.
type recordRow struct {
	ID            int64                 `db:"id"`
	ConnectorID   int64                 `db:"connector_id"`
	Version       int64                 `db:"version"`
	Recipient     string                `db:"recipient"`
	RecipientType consent.RecipientType `db:"recipient_type"`
	Type          consent.Type          `db:"type"`
	Status        consent.Status        `db:"status"`
	ConsentDate   consent.Date          `db:"consent_date"`
	Source        consent.Source        `db:"source"`
	ExternalID    string                `db:"external_id"`
	Attempts      int                   `db:"attempts"`
}

func (r recordRow) record() consent.Record {
	return consent.Record{ID: r.ID, ConnectorID: r.ConnectorID, Version: r.Version, ExternalID: r.ExternalID,
		Attempts: r.Attempts, Consent: consent.Consent{Recipient: r.Recipient, RecipientType: r.RecipientType,
			Type: r.Type, Status: r.Status, ConsentDate: r.ConsentDate, Source: r.Source}}
}

// ClaimBatch puts up to size due pending records of the connector in flight
// in a new batch of the run, oldest consent first, and returns the batch
// and its records; batchID is 0 and recs empty when nothing is due. A record
// dated after now, by no more than consent.MaxAhead, is not due before its
// date. Claims running at once (other workers, other replicas) never take
// one record twice.
func (s *Store) ClaimBatch(ctx context.Context, connectorID, runID int64, size int, now time.Time) (batchID int64, recs []consent.Record, err error) {
	if size < 1 || size > consent.MaxBulkSize {
		return 0, nil, fmt.Errorf("claim batch: size %d: want 1 to %d", size, consent.MaxBulkSize)
	}
	var rows []struct {
		recordRow
		BatchID int64 `db:"batch_id"`
	}
	if err := s.db.SelectContext(ctx, &rows, claimBatch, connectorID, runID, size, now, maxAhead); err != nil {
		return 0, nil, fmt.Errorf("claim batch: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil, nil
	}
	recs = make([]consent.Record, len(rows))
	for i, r := range rows {
		recs[i] = r.record()
	}
	return rows[0].BatchID, recs, nil
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
	err = tx.GetContext(ctx, &n, `
		WITH b AS (
		    UPDATE batches SET request_id = $2, state = 'submitted', submitted_at = now()
		    WHERE id = $1 AND state = 'claimed'
		    RETURNING id
		), u AS (
		    UPDATE batch_items bi SET subrequest_id = u.sub
		    FROM b, unnest($3::bigint[], $4::text[]) AS u(consent_id, sub)
		    WHERE bi.batch_id = b.id AND bi.consent_id = u.consent_id
		    RETURNING 1
		)
		SELECT count(*) FROM u`, batchID, requestID, pq.Array(ids), pq.Array(subs))
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

// saveSubRequest makes a bulk request carrying part of claimed batch $1 a
// batch of its own (same connector and run), submitted with requestId $2:
// the records still in flight in $1 move to it, and it gets their items with
// the versions claimed and subrequestIds $4. It returns the new batch and
// how many items it got.
const saveSubRequest = `
WITH parent AS (
    SELECT connector_id, run_id FROM batches WHERE id = $1 AND state = 'claimed'
),
child AS (
    INSERT INTO batches (connector_id, run_id, request_id, state, size, submitted_at)
    SELECT connector_id, run_id, $2, 'submitted', cardinality($3::bigint[]), now() FROM parent
    RETURNING id
),
moved AS (
    UPDATE consents c SET batch_id = child.id, updated_at = now()
    FROM child, unnest($3::bigint[]) AS u(id)
    WHERE c.id = u.id AND c.batch_id = $1 AND c.state = 'in_flight'
),
items AS (
    INSERT INTO batch_items (batch_id, consent_id, version, subrequest_id)
    SELECT child.id, bi.consent_id, bi.version, u.sub
    FROM child, unnest($3::bigint[], $4::text[]) AS u(id, sub)
    JOIN batch_items bi ON bi.batch_id = $1 AND bi.consent_id = u.id
    RETURNING 1
)
SELECT coalesce((SELECT id FROM child), 0) AS id, (SELECT count(*) FROM items) AS n`

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

// lockBatch locks the records still in flight in a batch, in key order (see
// retry.go), before finishBatch writes them: an UPDATE's join follows no
// order. $1 is the batch, $2 the records' ids.
const lockBatch = `
SELECT c.id FROM consents c
WHERE c.id = ANY($2::bigint[]) AND c.state = 'in_flight' AND c.batch_id = $1
ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
FOR NO KEY UPDATE`

// finishBatch writes every verdict of a batch in one statement, guarded:
// only a record still in flight in this batch at the version sent changes.
const finishBatch = `
UPDATE consents c SET
    state           = v.state,
    outcome         = NULLIF(v.outcome, ''),
    iys_code        = NULLIF(v.code, ''),
    iys_message     = NULLIF(v.message, ''),
    transaction_id  = NULLIF(v.txn, ''),
    attempts        = c.attempts + CASE WHEN v.tried THEN 1 ELSE 0 END,
    next_attempt_at = CASE WHEN v.state = 'pending' THEN now() + make_interval(secs => v.retry_secs)
                           ELSE c.next_attempt_at END,
    synced_at       = CASE WHEN v.state = 'synced' THEN now() ELSE NULL END,
    updated_at      = now()
FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::bool[], $10::float8[])
     AS v(id, version, state, outcome, code, message, txn, tried, retry_secs)
WHERE c.id = v.id AND c.version = v.version AND c.state = 'in_flight' AND c.batch_id = $1
RETURNING c.id`

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
// finishBatch statement's.
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
	res, err := tx.ExecContext(ctx, `
		UPDATE batches SET state = $2, finished_at = now() WHERE id = $1 AND state IN ('claimed', 'submitted')`,
		batchID, state)
	if err != nil {
		return consent.Tally{}, err
	}
	if k, err := res.RowsAffected(); err != nil || k != 1 {
		return consent.Tally{}, ErrBatchMoved
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE runs SET sent = sent + $2, accepted = accepted + $3, rejected = rejected + $4,
		                retried = retried + $5, failed = failed + $6, heartbeat_at = now()
		WHERE id = $1`, runID, t.Sent, t.Accepted, t.Rejected, t.Retried, t.Failed); err != nil {
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
	err = tx.GetContext(ctx, &released, `
		WITH b AS (
		    UPDATE batches SET state = 'released', finished_at = now()
		    WHERE connector_id = $1 AND state = 'claimed'
		    RETURNING id
		), locked AS MATERIALIZED (
		    SELECT c.id FROM b JOIN batch_items bi ON bi.batch_id = b.id JOIN consents c ON c.id = bi.consent_id
		    WHERE c.state = 'in_flight' AND c.batch_id = b.id
		    ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
		    FOR NO KEY UPDATE OF c
		), r AS (
		    UPDATE consents c SET state = 'pending', updated_at = now()
		    FROM locked WHERE c.id = locked.id
		    RETURNING 1
		)
		SELECT count(*) FROM r`, connectorID)
	if err != nil {
		return 0, nil, fmt.Errorf("recover batches: release claimed: %w", err)
	}
	var rows []struct {
		BatchID      int64  `db:"batch_id"`
		RequestID    string `db:"request_id"`
		SubrequestID string `db:"subrequest_id"`
		SentVersion  int64  `db:"sent_version"`
		recordRow
	}
	err = tx.SelectContext(ctx, &rows, `
		SELECT b.id AS batch_id, b.request_id, coalesce(bi.subrequest_id, '') AS subrequest_id,
		       bi.version AS sent_version, c.id, c.connector_id, c.version, c.recipient, c.recipient_type, c.type,
		       c.status, c.consent_date, c.source, c.external_id, c.attempts
		FROM batches b
		JOIN batch_items bi ON bi.batch_id = b.id
		JOIN consents c ON c.id = bi.consent_id
		WHERE b.connector_id = $1 AND b.state = 'submitted'
		ORDER BY b.id, bi.consent_id`, connectorID)
	if err != nil {
		return 0, nil, fmt.Errorf("recover batches: read submitted: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("recover batches: %w", err)
	}
	for _, r := range rows {
		if n := len(submitted); n == 0 || submitted[n-1].ID != r.BatchID {
			submitted = append(submitted, consent.SubmittedBatch{ID: r.BatchID, RequestID: r.RequestID})
		}
		rec := r.record()
		rec.Version = r.SentVersion
		b := &submitted[len(submitted)-1]
		b.Items = append(b.Items, consent.SentRecord{Record: rec, SubrequestID: r.SubrequestID})
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
	err := s.db.GetContext(ctx, &r, `
		SELECT (SELECT count(*) FROM consents WHERE connector_id = $1 AND state = 'pending') AS pending,
		       (SELECT count(*) FROM consents WHERE connector_id = $1 AND state = 'in_flight') AS in_flight,
		       coalesce((SELECT min(CASE WHEN `+early(2, 3)+`
		                                 THEN greatest(extract(epoch FROM next_attempt_at - now()),
		                                               extract(epoch FROM consent_date - $2::timestamptz))
		                                 ELSE extract(epoch FROM next_attempt_at - now()) END)::float8
		                 FROM consents WHERE connector_id = $1 AND state = 'pending'), 0) AS due_in`, connectorID, now, maxAhead)
	if err != nil {
		return consent.Backlog{}, fmt.Errorf("backlog: %w", err)
	}
	return consent.Backlog{Pending: r.Pending, InFlight: r.InFlight,
		NextDueIn: secondsToDuration(r.DueIn)}, nil
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
