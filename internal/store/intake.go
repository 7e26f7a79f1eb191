package store

import (
	"context"
	"database/sql"
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

// ImportItems stores the valid items of one HTTP intake request as pending
// consents of the connector, in one transaction, with the merge of ImportFile
// (same staging table, same COPY, same newest-wins statement), and tells per
// row whether it was accepted, superseded or unchanged. Each row is one item:
// Line is its 1-based position in the request, increasing. channels gives
// one imports row each (path is the request's, e.g. "api:crm"), so that the
// audit keeps the channels of files; a channel with no item is left out. Its
// Valid counts must match the rows of that channel (EPOSTA rows are email,
// MESAJ and ARAMA rows sms). A transaction that a concurrent writer got in
// the way of is run again (see retry).
func (s *Store) ImportItems(ctx context.Context, connectorID int64, path, requestID string, rows []ImportRow, channels []IntakeChannel) (IntakeResult, error) {
	var res IntakeResult
	err := retry(ctx, func(int) error {
		var err error
		res, err = s.importItems(ctx, connectorID, path, requestID, rows, channels)
		return err
	})
	if err != nil {
		return IntakeResult{}, fmt.Errorf("import items: %w", err)
	}
	return res, nil
}

// itemVerdict is one row of mergeItems.
type itemVerdict struct {
	line     int
	verdict  Verdict
	winner   bool
	inserted bool // the merge inserted its record
}

func (s *Store) importItems(ctx context.Context, connectorID int64, path, requestID string, rows []ImportRow, channels []IntakeChannel) (IntakeResult, error) {
	if err := checkIntakeChannels(rows, channels); err != nil {
		return IntakeResult{}, err
	}
	conn, tx, types, err := s.beginImport(ctx, connectorID, lockConnectorChannels)
	if err != nil {
		return IntakeResult{}, err
	}
	defer conn.Close()
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	importID, at, err := reserveImportID(ctx, tx)
	if err != nil {
		return IntakeResult{}, err
	}
	o := origin{kind: "api", prefix: path, importID: importID, requestID: requestID}
	n, lines, err := copyRows(ctx, conn, copyStaging, types, fromRows(rows), stagedWith(o.stamp(at)))
	if err != nil {
		return IntakeResult{}, err
	}
	if n != len(rows) || lines != len(rows) {
		return IntakeResult{}, fmt.Errorf("%d rows from %d items: want one row an item", n, lines)
	}
	vs := make([]itemVerdict, 0, n)
	err = runMerge(ctx, tx.Tx, mergeItems, connectorID, s.path != upsertOnly, o, func(q *sql.Rows) error {
		vs = vs[:0]
		for q.Next() {
			var v itemVerdict
			if err := q.Scan(&v.line, &v.verdict, &v.winner, &v.inserted); err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return q.Err()
	})
	if err != nil {
		return IntakeResult{}, err
	}
	if len(vs) != n {
		return IntakeResult{}, fmt.Errorf("merge: %d verdicts for %d rows", len(vs), n)
	}
	res := IntakeResult{ImportResult: ImportResult{Rows: n}, Verdicts: make([]Verdict, n)}
	per := map[string]*ImportResult{}
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
			if v.inserted {
				p.Inserted++
			} else {
				p.Updated++
			}
		case VerdictSuperseded:
			p.SupersededLines++
		}
		if v.winner && v.verdict != VerdictAccepted {
			p.Unchanged++ // a record the request names and leaves as it was
		}
	}
	for _, p := range per {
		res.Inserted += p.Inserted
		res.Updated += p.Updated
		res.Unchanged += p.Unchanged
		res.SupersededLines += p.SupersededLines
	}
	if err := recordChannelImports(ctx, tx, connectorID, importID, path, channels, per); err != nil {
		return IntakeResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return IntakeResult{}, err
	}
	return res, nil
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
