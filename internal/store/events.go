package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The history of the records (consent_events, see 0011_consent_events.sql):
// every writer of consents appends an event per record it changes, in the
// statement or transaction of the change, and moves the record's chain head
// (event_seq, event_hash). The import's merge, the pull and the batches'
// statements do it in their own SQL; recordEvents is the piece for any other
// writer.

// Event is a consent_events row: one change of a record, or one send or
// verdict, with the record's values as they were after it; the table's row
// type (see rowTypes).
type Event struct {
	ConsentID     int64          `db:"consent_id"`
	Seq           int            `db:"seq"` // 1, 2, ... per record
	At            time.Time      `db:"at"`
	Kind          string         `db:"kind"`   // see the Event* kinds
	Origin        string         `db:"origin"` // file:NAME:LINE, api:TOKEN:INDEX, source:BRAND:EXTERNAL_ID, iys:SOURCE ...
	Status        string         `db:"status"`
	ConsentDate   time.Time      `db:"consent_date"`
	Source        string         `db:"source"`
	RecipientType string         `db:"recipient_type"`
	ExternalID    string         `db:"external_id"`
	Version       int64          `db:"version"`
	State         string         `db:"state"`
	ImportID      sql.NullInt64  `db:"import_id"`
	RequestID     sql.NullString `db:"request_id"`
	SubrequestID  sql.NullString `db:"subrequest_id"`
	TransactionID sql.NullString `db:"transaction_id"`
	CreationDate  sql.NullTime   `db:"creation_date"`
	Outcome       sql.NullString `db:"outcome"`
	IYSCode       sql.NullString `db:"iys_code"`
	IYSMessage    sql.NullString `db:"iys_message"`
	Hash          []byte         `db:"hash"`
}

// The kinds of events.
const (
	EventFile      = "file"      // a line of an imported file
	EventAPI       = "api"       // an item of an intake request
	EventSource    = "source"    // a user of a read of the user-table source
	EventIYS       = "iys"       // a change pulled from İYS's changes feed
	EventReconcile = "reconcile" // a repair from İYS's day files
	EventRefresh   = "refresh"   // a superseded record made what İYS holds
	EventSent      = "sent"      // sent to İYS in a bulk request
	EventVerdict   = "verdict"   // İYS's verdict, or a retry or release, written
	EventRequeued  = "requeued"  // put back to pending to be sent again
	EventRedrive   = "redrive"   // put back to pending by an operator's redrive, its version bumped
	EventBaseline  = "baseline"  // the value a record had when the history began
)

// EventKinds are every kind; consent_events accepts these and no other
// (migration 0017).
var EventKinds = []string{EventFile, EventAPI, EventSource, EventIYS, EventReconcile, EventRefresh, EventSent,
	EventVerdict, EventRequeued, EventRedrive, EventBaseline}

// ValueKinds are the kinds that set a record's value (and bump its version).
// A redrive keeps the value but bumps the version, so that no late answer
// lands on it: its event is a value event too.
var ValueKinds = []string{EventFile, EventAPI, EventSource, EventIYS, EventReconcile, EventRefresh, EventRedrive}

// Statements of sql/consent_events.sql.
var appendEvents = stmt("AppendEvents")

// recordEvents appends one event of kind to each record of ids, holding its
// values as they are now in tx, and moves its chain head: for a writer that
// changed the records (state, a requeue...) without writing their events in
// its own statement. The caller has locked the records (in key order, see
// retry.go) and changed them in tx. origin says who or what did it (e.g.
// "redrive:OPERATOR:FILTER"); a record of a "" origin keeps the origin of
// its value. It returns how many events it wrote.
func recordEvents(ctx context.Context, tx *sqlx.Tx, kind, origin string, ids []int64) (int, error) {
	res, err := tx.ExecContext(ctx, appendEvents, pq.Array(ids), kind, origin)
	if err != nil {
		return 0, fmt.Errorf("record %s events: %w", kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("record %s events: %w", kind, err)
	}
	return int(n), nil
}

// Broken is a record whose history does not hold, and how.
type Broken struct {
	ID            int64
	Recipient     string
	RecipientType string
	Type          string
	// FirstBad is the first event whose hash does not match its content and
	// its predecessor's hash (0: none): edited, or inserted by hand.
	FirstBad int
	// FirstGap is the first event that does not follow its predecessor (0:
	// none): events were deleted before it.
	FirstGap int
	// HeadSeq is the last event the record names; LastSeq the last it has.
	// They differ, or HeadOK is false, when events were deleted or added at
	// the end.
	HeadSeq, LastSeq int
	HeadOK           bool
	// ValueOK is false when the record's value is not its last value event's:
	// it was changed without an event.
	ValueOK bool
}

// Verified is what VerifyChains walked.
type Verified struct {
	Records, Events int
	Broken          []Broken // by record id
}

var verifyChains = stmt("VerifyChains")

// VerifyChains walks the event chains of the connector's records (see
// sql/consent_events.sql's VerifyChains) and names the records whose
// history was edited, cut or added to behind the writers' back.
func (s *Store) VerifyChains(ctx context.Context, connectorID int64) (Verified, error) {
	return verifyChainsOn(ctx, s.db, connectorID)
}

// verifyChainsOn is VerifyChains on q: the pool, or a transaction.
func verifyChainsOn(ctx context.Context, q sqlx.QueryerContext, connectorID int64) (Verified, error) {
	rows, err := q.QueryContext(ctx, verifyChains, connectorID)
	if err != nil {
		return Verified{}, fmt.Errorf("verify history: %w", err)
	}
	defer rows.Close()
	var v Verified
	for rows.Next() {
		var b Broken
		var bad, gap sql.NullInt64
		if err := rows.Scan(&b.ID, &b.Recipient, &b.RecipientType, &b.Type, &b.HeadSeq, &bad, &gap, &b.LastSeq,
			&b.HeadOK, &b.ValueOK); err != nil {
			return Verified{}, fmt.Errorf("verify history: %w", err)
		}
		if b.ID == 0 { // the totals
			v.Records, v.Events = b.HeadSeq, b.LastSeq
			continue
		}
		b.FirstBad, b.FirstGap = int(bad.Int64), int(gap.Int64)
		v.Broken = append(v.Broken, b)
	}
	if err := rows.Err(); err != nil {
		return Verified{}, fmt.Errorf("verify history: %w", err)
	}
	return v, nil
}

// RecipientEvent is an event of one of a recipient's records, with the
// record's consent type.
type RecipientEvent struct {
	Type string `db:"type"`
	Event
}

var eventsOfRecipient = stmt("EventsOfRecipient")

// History returns the events of the connector's records of recipient (of
// consent type typ, or every type if ""), oldest first.
func (s *Store) History(ctx context.Context, connectorID int64, recipient, typ string) ([]RecipientEvent, error) {
	var out []RecipientEvent
	if err := s.db.SelectContext(ctx, &out, eventsOfRecipient, connectorID, recipient, typ); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return out, nil
}
