package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// quarantineRow is a pull_quarantine row: the table's row type (see rowTypes).
type quarantineRow struct {
	ID            int64     `db:"id"`
	ConnectorID   int64     `db:"connector_id"`
	Source        string    `db:"source"`
	Raw           string    `db:"raw"` // personal data: never logged
	Reason        string    `db:"reason"`
	QuarantinedAt time.Time `db:"quarantined_at"`
}

// Statements of sql/pull_quarantine.sql.
var (
	quarantineEntries = stmt("Quarantine")
	countQuarantined  = stmt("CountQuarantined")
)

// Quarantined is an entry of İYS's changes feed that the pull could not
// read, kept as İYS sent it.
type Quarantined struct {
	Raw    []byte // the entry's JSON as sent: personal data, never logged
	Reason string // what could not be read, naming the field; no personal data
}

// quarantine keeps a page's unreadable entries, in the page's transaction.
// An entry already held (the same bytes, read again) is kept once.
func quarantine(ctx context.Context, tx *sqlx.Tx, connectorID int64, source string, entries []Quarantined) error {
	if len(entries) == 0 {
		return nil
	}
	raws, reasons := make([]string, len(entries)), make([]string, len(entries))
	for i, q := range entries {
		raws[i], reasons[i] = storableText(string(q.Raw)), storableText(q.Reason)
	}
	if _, err := tx.ExecContext(ctx, quarantineEntries, connectorID, source, pq.Array(raws), pq.Array(reasons)); err != nil {
		return fmt.Errorf("quarantine unreadable changes: %w", err)
	}
	return nil
}

// storableText makes s storable as PostgreSQL text, which refuses invalid
// UTF-8 and NUL: an entry that cannot even be stored must not block the
// feed's every later page.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// QuarantinedChanges is how many feed entries of the connector are held in
// quarantine.
func (s *Store) QuarantinedChanges(ctx context.Context, connectorID int64) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, countQuarantined, connectorID); err != nil {
		return 0, fmt.Errorf("count quarantined changes: %w", err)
	}
	return n, nil
}
