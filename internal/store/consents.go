package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Record is a stored consent record with where it stands: the row type of
// consents (see rowTypes), one field per column.
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
	// The head of the record's chain of events (consent_events): how many
	// it has and the last one's hash.
	EventSeq  int    `db:"event_seq"`
	EventHash []byte `db:"event_hash"`
	// Origin names where the current value came from: file:NAME:LINE, api:TOKEN:ITEM, ...
	Origin string `db:"origin"`
}

// Consent is the record's consent as İYS receives it.
func (r Record) Consent() consent.Consent {
	return consent.Consent{Recipient: r.Recipient, RecipientType: r.RecipientType, Type: r.Type,
		Status: r.Status, ConsentDate: r.ConsentDate, Source: r.Source}
}

// sendable is the record as the engine sends it.
func (r Record) sendable() consent.Record {
	return consent.Record{ID: r.ID, ConnectorID: r.ConnectorID, Version: r.Version, ExternalID: r.ExternalID,
		Attempts: r.Attempts, Consent: r.Consent()}
}

// consentsOf is sql/consents.sql's ConsentsOf.
var consentsOf = stmt("ConsentsOf")

// Filter narrows ConsentsOf; zero fields match everything.
type Filter struct {
	State   consent.State
	Outcome consent.Outcome
}

// ConsentsOf calls fn with each record of the connector that matches the
// filter, in id order, reading them as it goes (a report of millions of
// records stays small). An error from fn stops it and is returned.
func (s *Store) ConsentsOf(ctx context.Context, connectorID int64, f Filter, fn func(Record) error) error {
	return s.eachRecord(ctx, fn, consentsOf, connectorID, string(f.State), string(f.Outcome))
}

// eachRecord runs a query of whole records and calls fn with each record,
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
