package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// Forgotten counts what Forget erased.
type Forgotten struct {
	Records     int // with their history
	Feed        int // entries of the changes feed
	Quarantined int // quarantined feed entries that named the recipient
}

// Forget erases a recipient's personal data of the connector, where
// retention allows: its records and their history, their entries in the
// changes feed, and the quarantined feed entries that name it. Retention
// allows it when every record is a RET dated more than retention before
// now, none being sent. Otherwise it erases nothing and returns a
// *KeptError saying until when.
func (s *Store) Forget(ctx context.Context, connectorID int64, recipient string, now time.Time, retention time.Duration) (Forgotten, error) {
	// The quarantine is matched by the recipient's text: an empty one
	// would match every entry.
	written := strings.ToLower(strings.TrimPrefix(recipient, "+"))
	if written == "" {
		return Forgotten{}, errors.New("forget: no recipient given")
	}
	var f Forgotten
	err := retry(ctx, func(int) error {
		var err error
		f, err = s.forget(ctx, connectorID, recipient, written, now, retention)
		return err
	})
	var kept *KeptError
	if err != nil && !errors.As(err, &kept) {
		return Forgotten{}, fmt.Errorf("forget: %w", err)
	}
	return f, err
}

// forget is one try of Forget; written is the recipient as the quarantine's
// text may hold it.
func (s *Store) forget(ctx context.Context, connectorID int64, recipient, written string, now time.Time, retention time.Duration) (Forgotten, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Forgotten{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var recs []struct {
		ID          int64          `db:"id"`
		Status      consent.Status `db:"status"`
		ConsentDate time.Time      `db:"consent_date"`
		State       consent.State  `db:"state"`
	}
	if err := tx.SelectContext(ctx, &recs, lockRecipient, connectorID, recipient); err != nil {
		return Forgotten{}, err
	}
	ids := make([]int64, 0, len(recs))
	var until time.Time
	for _, r := range recs {
		switch {
		case r.Status != consent.StatusRet:
			return Forgotten{}, &KeptError{Reason: "a consent of this recipient is valid (ONAY): its record is kept while it is, and for the retention after a RET"}
		case r.State == consent.StateInFlight:
			return Forgotten{}, &KeptError{Reason: "a record of this recipient is being sent to İYS: try again after the run"}
		}
		if end := r.ConsentDate.Add(retention); end.After(now) && end.After(until) {
			until = end
		}
		ids = append(ids, r.ID)
	}
	if !until.IsZero() {
		return Forgotten{}, &KeptError{Until: until, Reason: "retention keeps this recipient's records until " + consent.NewDate(until).String()}
	}
	if _, err := tx.ExecContext(ctx, allowDelete); err != nil {
		return Forgotten{}, err
	}
	f := Forgotten{Records: len(ids)}
	if err := tx.QueryRowxContext(ctx, forgetRecords, pq.Array(ids), connectorID, written).Scan(&f.Feed, &f.Quarantined); err != nil {
		return Forgotten{}, err
	}
	return f, tx.Commit()
}
