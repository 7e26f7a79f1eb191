package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Verdict is what the intake did with one valid item.
type Verdict string

// The verdicts of ImportItems.
const (
	// VerdictAccepted: the item is now the stored record (new, or newer than
	// the stored one), pending.
	VerdictAccepted Verdict = "accepted"
	// VerdictSuperseded: the item lost to a newer stored record or to a later
	// item of the same request; nothing of it was stored.
	VerdictSuperseded Verdict = "superseded"
	// VerdictUnchanged: the item is identical to the stored record.
	VerdictUnchanged Verdict = "unchanged"
)

// ErrIntakeContention means that concurrent writers kept changing the
// request's records between its verdicts and its merge; nothing was stored,
// and the request may be sent again.
var ErrIntakeContention = errors.New("the records changed concurrently while they were merged: nothing was stored, send the request again")

// IntakeChannel counts the items of one channel ("email" or "sms") of an
// intake request for its imports row: Valid of them were given as rows,
// Rejected were refused by validation.
type IntakeChannel struct {
	Channel  string
	Valid    int
	Rejected int
}

// IntakeResult is what one intake request did: a verdict per row, in row
// order, and the counts of the whole request as ImportFile gives them.
type IntakeResult struct {
	ImportResult
	Verdicts []Verdict
}

// intakeAttempts bounds the transactions of one request when concurrent
// writers keep moving its records (see ErrIntakeContention).
const intakeAttempts = 3

// ImportItems stores the valid items of one HTTP intake request as pending
// consents of the connector, in one transaction, with the merge of ImportFile
// (same staging table, same COPY, same newest-wins statement), and tells per
// row whether it was accepted, superseded or unchanged. Each row is one item:
// Line is its 1-based position in the request, increasing. channels gives
// one imports row each (path is the request's, e.g. "api:crm"), so that the
// audit keeps the channels of files; a channel with no item is left out. Its
// Valid counts must match the rows of that channel (EPOSTA rows are email,
// MESAJ and ARAMA rows sms).
func (s *Store) ImportItems(ctx context.Context, connectorID int64, path string, rows []ImportRow, channels []IntakeChannel) (IntakeResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.importItems(ctx, connectorID, path, rows, channels, attempt > 1)
		if errors.Is(err, errVerdictsMoved) && attempt < intakeAttempts {
			continue
		}
		if errors.Is(err, errVerdictsMoved) {
			err = ErrIntakeContention
		}
		if err != nil {
			return IntakeResult{}, fmt.Errorf("import items: %w", err)
		}
		return res, nil
	}
}

// errVerdictsMoved: the merge did not do what the verdicts, read a statement
// earlier, said it would. Only a concurrent writer on the same records
// causes it; the transaction is rolled back and run again.
var errVerdictsMoved = errors.New("verdicts and merge disagree")

// intakeVerdicts reads, before the merge, what the merge will do with each
// staged row. It is the merge's own first step, the staged CTE of
// mergeStaging (which rows win within the request, which stored record each
// meets, which are identical to it), followed by the merge's rules:
//
//   - unchanged: identical to the stored record (the merge skips it, and does
//     not count it as superseded);
//   - superseded: not its record's winner in the request, or older than the
//     stored record (counted by the merge as superseded);
//   - accepted: what the merge's written/fresh parts insert or update.
//
// It starts from the merge's own stagedCTE, so that the two cannot drift apart.
const intakeVerdicts = stagedCTE + `
SELECT line,
       CASE WHEN same THEN 'unchanged'
            WHEN NOT winner OR stored_date > consent_date THEN 'superseded'
            ELSE 'accepted' END,
       winner,
       stored_id IS NULL
FROM staged
ORDER BY line`

// itemVerdict is one row of intakeVerdicts.
type itemVerdict struct {
	line    int
	verdict Verdict
	winner  bool
	fresh   bool // no stored record before
}

// intakeLockClass is the first key of the two-key transaction advisory lock
// that a retried intake request takes on its connector ("iysi"; the second
// key is the connector id), so that intake requests of one connector that
// met once take turns, and do not meet again.
const intakeLockClass int32 = 0x6979_7369

func (s *Store) importItems(ctx context.Context, connectorID int64, path string, rows []ImportRow, channels []IntakeChannel, serialize bool) (IntakeResult, error) {
	if err := checkIntakeChannels(rows, channels); err != nil {
		return IntakeResult{}, err
	}
	tx, types, err := s.beginImport(ctx, connectorID)
	if err != nil {
		return IntakeResult{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if serialize {
		// Every request that runs into another takes this lock from its second
		// attempt on; a first attempt does not wait for it, so only contended
		// requests pay. Writers other than the intake do not take it: they
		// may still move a record, and the attempts are bounded.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1, $2::int4)", intakeLockClass, connectorID); err != nil {
			return IntakeResult{}, err
		}
	}
	n, lines, err := copyRows(ctx, tx.Tx, types, fromRows(rows))
	if err != nil {
		return IntakeResult{}, err
	}
	if n != len(rows) || lines != len(rows) {
		return IntakeResult{}, fmt.Errorf("%d rows from %d items: want one row an item", n, lines)
	}
	vs, err := readVerdicts(ctx, tx.Tx, connectorID, len(rows))
	if err != nil {
		return IntakeResult{}, err
	}
	m, err := merge(ctx, tx.Tx, connectorID, !s.upsertOnly)
	if err != nil {
		return IntakeResult{}, err
	}
	res := IntakeResult{
		ImportResult: ImportResult{Rows: n, Inserted: m.inserted, Updated: m.updated,
			Unchanged: m.keys - m.inserted - m.updated, SupersededLines: m.superseded},
		Verdicts: make([]Verdict, len(rows)),
	}
	per := map[string]*ImportResult{}
	accepted, superseded := 0, 0
	for i, v := range vs {
		res.Verdicts[i] = v.verdict
		ch := channelOf(rows[i].Type)
		if per[ch] == nil {
			per[ch] = &ImportResult{}
		}
		p := per[ch]
		p.Rows++
		switch v.verdict {
		case VerdictAccepted:
			accepted++
			if v.fresh {
				p.Inserted++
			} else {
				p.Updated++
			}
		case VerdictSuperseded:
			superseded++
			p.SupersededLines++
		}
		if v.winner && v.verdict != VerdictAccepted {
			p.Unchanged++ // a record the request names and leaves as it was
		}
	}
	if accepted != m.inserted+m.updated || superseded != m.superseded {
		return IntakeResult{}, errVerdictsMoved
	}
	if err := recordChannelImports(ctx, tx, connectorID, path, channels, per); err != nil {
		return IntakeResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return IntakeResult{}, err
	}
	return res, nil
}

func readVerdicts(ctx context.Context, tx *sql.Tx, connectorID int64, n int) ([]itemVerdict, error) {
	q, err := tx.QueryContext(ctx, intakeVerdicts, connectorID)
	if err != nil {
		return nil, fmt.Errorf("verdicts: %w", err)
	}
	defer q.Close()
	vs := make([]itemVerdict, 0, n)
	for q.Next() {
		var v itemVerdict
		if err := q.Scan(&v.line, &v.verdict, &v.winner, &v.fresh); err != nil {
			return nil, fmt.Errorf("verdicts: %w", err)
		}
		vs = append(vs, v)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("verdicts: %w", err)
	}
	if len(vs) != n {
		return nil, fmt.Errorf("verdicts: %d for %d rows", len(vs), n)
	}
	return vs, nil
}

// channelOf is the upload channel of a consent type: the imports row it is counted in.
func channelOf(t consent.Type) string {
	if t == consent.TypeEposta {
		return "email"
	}
	return "sms"
}

// checkIntakeChannels holds the audit counts to the rows: a caller's bug otherwise.
func checkIntakeChannels(rows []ImportRow, channels []IntakeChannel) error {
	valid := map[string]int{}
	for _, r := range rows {
		valid[channelOf(r.Type)]++
	}
	seen := map[string]bool{}
	for _, c := range channels {
		switch {
		case c.Channel != "email" && c.Channel != "sms":
			return fmt.Errorf("channel %q: want email or sms", c.Channel)
		case seen[c.Channel]:
			return fmt.Errorf("channel %s named twice", c.Channel)
		case c.Valid != valid[c.Channel] || c.Rejected < 0:
			return fmt.Errorf("channel %s: %d valid items, but %d rows", c.Channel, c.Valid, valid[c.Channel])
		}
		seen[c.Channel] = true
	}
	for ch, n := range valid {
		if n > 0 && !seen[ch] {
			return fmt.Errorf("%d rows of channel %s, which has no counts", n, ch)
		}
	}
	return nil
}

// fromRows is a RowSource over rows held in memory.
func fromRows(rows []ImportRow) RowSource {
	return func(emit func(ImportRow) error) error {
		for _, r := range rows {
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}
