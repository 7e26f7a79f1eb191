package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// What the reconciliation with İYS's daily files (internal/reconcile) reads
// and repairs. The repair goes through the pull's own statement
// (applyChanges, newest-wins, outcome from_iys) but leaves the pull's
// cursors alone: a day file is no page of the changes feed.

// Statements of sql/consents.sql.
var (
	recordsOfKeys = stmt("RecordsOfKeys")
	syncedBetween = stmt("SyncedBetween")
	resend        = stmt("Resend") // synced records back to pending, locked in key order
)

// keysPerQuery bounds the keys one RecordsOfKeys statement looks up.
const keysPerQuery = 5000

// RecordsOfKeys calls fn with the connector's record of each key it holds
// one of, in no particular order; keys it holds none of are skipped. A key
// given twice is reported twice. An error from fn stops it and is returned.
func (s *Store) RecordsOfKeys(ctx context.Context, connectorID int64, keys []consent.Key, fn func(Record) error) error {
	for len(keys) > 0 {
		n := min(len(keys), keysPerQuery)
		recipients, rtypes, types := make([]string, n), make([]string, n), make([]string, n)
		for i, k := range keys[:n] {
			recipients[i], rtypes[i], types[i] = k.Recipient, string(k.RecipientType), string(k.Type)
		}
		keys = keys[n:]
		err := s.eachRecord(ctx, fn, recordsOfKeys, connectorID, pq.Array(recipients), pq.Array(rtypes), pq.Array(types))
		if err != nil {
			return err
		}
	}
	return nil
}

// SyncedBetween calls fn with the connector's synced records of one outcome
// whose synced_at is in [from, to), in id order. An error from fn stops it
// and is returned.
func (s *Store) SyncedBetween(ctx context.Context, connectorID int64, outcome consent.Outcome, from, to time.Time, fn func(Record) error) error {
	return s.eachRecord(ctx, fn, syncedBetween, connectorID, string(outcome), from, to)
}

// ApplyReconciled brings records to İYS's state as ApplyChanges does
// (newest-wins: per key the latest of changes, and only where it is newer
// than our record; the record becomes synced with outcome from_iys and a
// new version), but stores no pull cursor. It returns how many records it
// changed.
func (s *Store) ApplyReconciled(ctx context.Context, connectorID int64, changes []Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	n, err := s.applyInTx(ctx, connectorID, "reconcile", changes, nil)
	if err != nil {
		return 0, fmt.Errorf("apply reconciled changes: %w", err)
	}
	return n, nil
}

// RecordVersion names a record as it was read.
type RecordVersion struct {
	ID      int64
	Version int64
}

// Resend sets synced records that İYS turns out not to hold back to
// pending, so that the next run sends them again. A record whose version
// moved on since it was read, that is no longer synced, or whose source is
// not the brand's (HS_*) is left alone. It returns how many it changed.
func (s *Store) Resend(ctx context.Context, connectorID int64, recs []RecordVersion) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	ids, versions := make([]int64, len(recs)), make([]int64, len(recs))
	for i, r := range recs {
		ids[i], versions[i] = r.ID, r.Version
	}
	var n int
	err := retry(ctx, func(int) error {
		var err error
		n, err = s.resend(ctx, connectorID, ids, versions)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("resend records: %w", err)
	}
	return n, nil
}

// resend is one try of Resend: the records requeued, each with its event
// (kind requeued, origin reconcile), in one transaction.
func (s *Store) resend(ctx context.Context, connectorID int64, ids, versions []int64) (int, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var requeued []int64
	if err := tx.SelectContext(ctx, &requeued, resend, connectorID, pq.Array(ids), pq.Array(versions)); err != nil {
		return 0, err
	}
	if _, err := recordEvents(ctx, tx, EventRequeued, "reconcile", requeued); err != nil {
		return 0, err
	}
	return len(requeued), tx.Commit()
}
