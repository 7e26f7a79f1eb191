package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Retention (IYS_RETENTION): a record's history is kept while its consent
// is valid, and for the retention after it stops being valid (a RET). Only
// prune and forget delete events, in a transaction that says so (the
// append-only trigger of 0011_consent_events.sql lets it), and retention
// cuts a chain only at its start, keeping where (consent_event_cuts).

// Statements of sql/consent_events.sql.
var (
	pruneEvents   = stmt("PruneEvents")
	lockRecipient = stmt("LockRecipient")
	forgetRecords = stmt("ForgetRecords")
)

// eventCutRow is a consent_event_cuts row: where retention cut a record's
// chain, the last event it deleted; the table's row type (see rowTypes).
type eventCutRow struct {
	ConsentID int64     `db:"consent_id"`
	Seq       int       `db:"seq"`
	Hash      []byte    `db:"hash"`
	CutAt     time.Time `db:"cut_at"`
}

// allowDelete lets this transaction delete events (see consent_events_append_only).
const allowDelete = "SET LOCAL iys_sync.prune = 'on'"

// Pruned counts what Prune deleted (or would).
type Pruned struct {
	Records, Events int
}

// Prune deletes the events past retention at now: of each record whose RET
// is dated more than retention before now, the events written before that
// moment, a prefix of its chain, whose end it keeps. dryRun only counts.
func (s *Store) Prune(ctx context.Context, now time.Time, retention time.Duration, dryRun bool) (Pruned, error) {
	var p Pruned
	err := retry(ctx, func(int) error {
		tx, err := s.db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		if _, err := tx.ExecContext(ctx, allowDelete); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, pruneEvents, now.Add(-retention), dryRun).Scan(&p.Records, &p.Events); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return Pruned{}, fmt.Errorf("prune history: %w", err)
	}
	return p, nil
}

// KeptError is forget's refusal: retention still requires a record of the
// recipient. Until is when the last of them may go; zero while a consent is
// valid (ONAY) or being sent.
type KeptError struct {
	Until  time.Time
	Reason string
}

func (e *KeptError) Error() string { return e.Reason }

// Forget erases a recipient's records of the connector and their history,
// where retention allows: every record a RET dated more than retention
// before now, none being sent. Otherwise it erases nothing and returns a
// *KeptError saying until when. It returns the records erased (0: none).
func (s *Store) Forget(ctx context.Context, connectorID int64, recipient string, now time.Time, retention time.Duration) (int, error) {
	var n int
	err := retry(ctx, func(int) error {
		var err error
		n, err = s.forget(ctx, connectorID, recipient, now, retention)
		return err
	})
	var kept *KeptError
	if err != nil && !errors.As(err, &kept) {
		return 0, fmt.Errorf("forget: %w", err)
	}
	return n, err
}

func (s *Store) forget(ctx context.Context, connectorID int64, recipient string, now time.Time, retention time.Duration) (int, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var recs []struct {
		ID          int64          `db:"id"`
		Status      consent.Status `db:"status"`
		ConsentDate time.Time      `db:"consent_date"`
		State       consent.State  `db:"state"`
	}
	if err := tx.SelectContext(ctx, &recs, lockRecipient, connectorID, recipient); err != nil {
		return 0, err
	}
	ids := make([]int64, 0, len(recs))
	var until time.Time
	for _, r := range recs {
		switch {
		case r.Status != consent.StatusRet:
			return 0, &KeptError{Reason: "a consent of this recipient is valid (ONAY): its record is kept while it is, and for the retention after a RET"}
		case r.State == consent.StateInFlight:
			return 0, &KeptError{Reason: "a record of this recipient is being sent to İYS: try again after the run"}
		}
		if end := r.ConsentDate.Add(retention); end.After(now) && end.After(until) {
			until = end
		}
		ids = append(ids, r.ID)
	}
	if !until.IsZero() {
		return 0, &KeptError{Until: until, Reason: "retention keeps this recipient's records until " + consent.NewDate(until).String()}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, allowDelete); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, forgetRecords, pq.Array(ids)); err != nil {
		return 0, err
	}
	return len(ids), tx.Commit()
}
