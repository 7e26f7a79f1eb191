package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iys-sync/iys-sync/internal/redact"
)

// webhookCursorRow is a webhook_cursors row: the table's row type (see rowTypes).
type webhookCursorRow struct {
	ConnectorID   int64          `db:"connector_id"`
	DeliveredPos  int64          `db:"delivered_pos"`
	DeliveredAt   sql.NullTime   `db:"delivered_at"`
	Attempts      int            `db:"attempts"`
	LastError     sql.NullString `db:"last_error"`
	NextAttemptAt time.Time      `db:"next_attempt_at"`
}

// sql/webhook_cursors.sql's statements.
var (
	ensureWebhookCursor = stmt("EnsureWebhookCursor")
	takeWebhookCursor   = stmt("TakeWebhookCursor")
	webhookDelivered    = stmt("WebhookDelivered")
	webhookFailed       = stmt("WebhookFailed")
	webhookLag          = stmt("WebhookLag")
	webhookCursor       = stmt("WebhookCursor")
	purgeWebhookCursor  = stmt("PurgeWebhookCursor")
)

// WebhookTurn is one replica's turn to deliver a connector's webhooks: it
// holds the connector's cursor row locked in a transaction until Delivered,
// Failed or Release ends it, so that no other replica delivers the
// connector meanwhile. A process that dies during its turn loses the lock
// with its connection, and the cursor stays where it was: what it was
// sending is sent again (at least once).
type WebhookTurn struct {
	tx           *sqlx.Tx
	ConnectorID  int64
	DeliveredPos int64 // the feed place up to which the receiver took the changes
	Attempts     int   // failed tries since the last delivery
}

// TakeWebhookTurn takes the connector's turn if its next try is due at now
// and no other replica holds it; nil, nil otherwise. A connector's first
// turn makes its cursor (at the feed's start); later ones cost one read.
func (s *Store) TakeWebhookTurn(ctx context.Context, connectorID int64, now time.Time) (*WebhookTurn, error) {
	t, err := s.takeWebhookTurn(ctx, connectorID, now)
	if t != nil || err != nil {
		return t, err
	}
	res, err := s.db.ExecContext(ctx, ensureWebhookCursor, connectorID, now)
	if err != nil {
		return nil, fmt.Errorf("webhook cursor: %w", err)
	}
	made, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("webhook cursor: %w", err)
	}
	if made == 0 {
		return nil, nil // not due, or another replica holds it
	}
	return s.takeWebhookTurn(ctx, connectorID, now)
}

// takeWebhookTurn is one try of TakeWebhookTurn's read: nil, nil when the
// cursor is missing, not due or held.
func (s *Store) takeWebhookTurn(ctx context.Context, connectorID int64, now time.Time) (*WebhookTurn, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("webhook cursor: %w", err)
	}
	var row webhookCursorRow
	err = tx.GetContext(ctx, &row, takeWebhookCursor, connectorID, now)
	if err != nil {
		tx.Rollback() //nolint:errcheck // the error is the read's
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, fmt.Errorf("webhook cursor: %w", err)
	}
	return &WebhookTurn{tx: tx, ConnectorID: connectorID, DeliveredPos: row.DeliveredPos, Attempts: row.Attempts}, nil
}

// Delivered moves the cursor to pos, the last place the receiver took, and
// ends the turn.
func (t *WebhookTurn) Delivered(ctx context.Context, pos int64, at time.Time) error {
	return t.end(ctx, webhookDelivered, pos, at)
}

// Failed records a failed try and when the next may be, and ends the turn.
// msg must hold no secret.
func (t *WebhookTurn) Failed(ctx context.Context, msg string, next time.Time) error {
	return t.end(ctx, webhookFailed, redact.String(msg), next) // status shows it, as runs' errors
}

func (t *WebhookTurn) end(ctx context.Context, q string, args ...any) error {
	defer t.tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := t.tx.ExecContext(ctx, q, append([]any{t.ConnectorID}, args...)...); err != nil {
		return fmt.Errorf("webhook cursor: %w", err)
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("webhook cursor: %w", err)
	}
	return nil
}

// Release ends the turn leaving the cursor as it was; a no-op after
// Delivered or Failed.
func (t *WebhookTurn) Release() { t.tx.Rollback() } //nolint:errcheck // nothing to undo

// WebhookState is where a connector's webhook delivery stands, for status.
type WebhookState struct {
	DeliveredAt   time.Time // the last 2xx; zero: none yet
	Attempts      int       // failed tries since
	LastError     string
	NextAttemptAt time.Time
	Undelivered   int64     // changes waiting
	OldestAt      time.Time // when the oldest waiting was written; zero: none waits
}

// WebhookState reads the connector's delivery; ok is false when webhooks
// never looked at it.
func (s *Store) WebhookState(ctx context.Context, connectorID int64) (st WebhookState, ok bool, err error) {
	var row webhookCursorRow
	err = s.db.GetContext(ctx, &row, webhookCursor, connectorID)
	if errors.Is(err, sql.ErrNoRows) {
		return WebhookState{}, false, nil
	}
	if err != nil {
		return WebhookState{}, false, fmt.Errorf("webhook state: %w", err)
	}
	st = WebhookState{DeliveredAt: row.DeliveredAt.Time, Attempts: row.Attempts, LastError: row.LastError.String,
		NextAttemptAt: row.NextAttemptAt}
	st.Undelivered, st.OldestAt, err = s.WebhookLag(ctx, connectorID)
	return st, err == nil, err
}

// WebhookLag counts the connector's changes not yet delivered, and tells
// when the oldest of them was written (zero when none).
func (s *Store) WebhookLag(ctx context.Context, connectorID int64) (n int64, oldest time.Time, err error) {
	var row struct {
		N      int64        `db:"n"`
		Oldest sql.NullTime `db:"oldest"`
	}
	if err := s.db.GetContext(ctx, &row, webhookLag, connectorID); err != nil {
		return 0, time.Time{}, fmt.Errorf("webhook lag: %w", err)
	}
	return row.N, row.Oldest.Time, nil
}
