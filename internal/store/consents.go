package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Record is a stored consent record with where it stands.
type Record struct {
	ID            int64                     `db:"id"`
	ConnectorID   int64                     `db:"connector_id"`
	Recipient     string                    `db:"recipient"`
	RecipientType consent.RecipientType     `db:"recipient_type"`
	Type          consent.Type              `db:"type"`
	Status        consent.Status            `db:"status"`
	ConsentDate   consent.Date              `db:"consent_date"`
	Source        consent.Source            `db:"source"`
	ExternalID    string                    `db:"external_id"`
	Version       int64                     `db:"version"`
	State         consent.State             `db:"state"`
	Outcome       sql.Null[consent.Outcome] `db:"outcome"`
	IYSCode       sql.NullString            `db:"iys_code"`
	IYSMessage    sql.NullString            `db:"iys_message"`
	TransactionID sql.NullString            `db:"transaction_id"`
	Attempts      int                       `db:"attempts"`
	NextAttemptAt time.Time                 `db:"next_attempt_at"`
	BatchID       sql.NullInt64             `db:"batch_id"`
	CreatedAt     time.Time                 `db:"created_at"`
	UpdatedAt     time.Time                 `db:"updated_at"`
	SyncedAt      sql.NullTime              `db:"synced_at"`
}

// Consent is the record's consent as İYS receives it.
func (r Record) Consent() consent.Consent {
	return consent.Consent{Recipient: r.Recipient, RecipientType: r.RecipientType, Type: r.Type,
		Status: r.Status, ConsentDate: r.ConsentDate, Source: r.Source}
}

// Filter narrows ConsentsOf; zero fields match everything.
type Filter struct {
	State   consent.State
	Outcome consent.Outcome
}

// ConsentsOf calls fn with each record of the connector that matches the
// filter, in id order, reading them as it goes (a report of millions of
// records stays small). An error from fn stops it and is returned.
func (s *Store) ConsentsOf(ctx context.Context, connectorID int64, f Filter, fn func(Record) error) error {
	return s.eachRecord(ctx, fn, `
		SELECT `+recordColumns+`
		FROM consents c
		WHERE c.connector_id = $1 AND ($2 = '' OR c.state = $2) AND ($3 = '' OR c.outcome = $3)
		ORDER BY c.id`, connectorID, string(f.State), string(f.Outcome))
}

// recordColumns are the columns of Record, from table alias c.
const recordColumns = `c.id, c.connector_id, c.recipient, c.recipient_type, c.type, c.status, c.consent_date, c.source,
       c.external_id, c.version, c.state, c.outcome, c.iys_code, c.iys_message, c.transaction_id, c.attempts,
       c.next_attempt_at, c.batch_id, c.created_at, c.updated_at, c.synced_at`

// eachRecord runs a query of recordColumns and calls fn with each record,
// reading them as it goes.
func (s *Store) eachRecord(ctx context.Context, fn func(Record) error, query string, args ...any) error {
	rows, err := s.db.QueryxContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Record
		if err := rows.StructScan(&r); err != nil {
			return fmt.Errorf("read records: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	return nil
}
