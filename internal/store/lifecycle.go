package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A connector's life after install: paused (runs skip it; imports, intake
// and its records wait as pending), resumed, changed, uninstalled (no
// longer served; its records and history kept unless purged).

// ConnectorUninstalled is the state of an uninstalled connector: no
// statement but install and the run history sees it.
const ConnectorUninstalled = "uninstalled"

// Errors of uninstall.
var (
	ErrConnectorRunning = errors.New("a run is syncing the connector now: uninstall it when the run has ended")
	ErrBatchesInFlight  = errors.New("batches of the connector are in flight at İYS: uninstall it after the next run has recorded their results")
)

// Statements of sql/connectors.sql, sql/batches.sql, sql/consents.sql,
// sql/source_users.sql and sql/pull_quarantine.sql.
var (
	setConnectorState         = stmt("SetConnectorState")
	updateConnector           = stmt("UpdateConnector")
	lockConnectorForUninstall = stmt("LockConnectorForUninstall")
	uninstall                 = stmt("Uninstall")
	countOpenBatches          = stmt("CountOpenBatches")
	purgeConsents             = stmt("PurgeConsents")
	purgeSourceUsers          = stmt("PurgeSourceUsers")
	purgeQuarantine           = stmt("PurgeQuarantine")
	purgeChanges              = stmt("PurgeChanges")
)

// SetConnectorState pauses (ConnectorPaused) or resumes (ConnectorActive)
// a brand's connector, and returns the state it had. A run going on when
// it is paused goes to its end; the next ones skip it.
func (s *Store) SetConnectorState(ctx context.Context, brandCode, state string) (was string, err error) {
	if state != ConnectorActive && state != ConnectorPaused {
		return "", fmt.Errorf("set connector %s state: %q: want %s or %s", brandCode, state, ConnectorActive, ConnectorPaused)
	}
	err = s.db.GetContext(ctx, &was, setConnectorState, brandCode, state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("connector %s: %w", brandCode, ErrNoConnector)
	}
	if err != nil {
		return "", fmt.Errorf("set connector %s state: %w", brandCode, err)
	}
	return was, nil
}

// ConnectorChange is what install --update changes of a connector; a nil
// field is left as it is.
type ConnectorChange struct {
	Channels      []consent.Type
	RecipientType *consent.RecipientType
	DefaultSource *consent.Source
	SourceQuery   *string
}

// Apply returns the connector with the change made and checked, and the
// channels it adds (whose rights İYS must be asked about again).
func (c Connector) Apply(ch ConnectorChange) (Connector, []consent.Type, error) {
	want := c
	if ch.Channels != nil {
		want.Channels = ch.Channels
	}
	if ch.RecipientType != nil {
		want.RecipientType = *ch.RecipientType
	}
	if ch.DefaultSource != nil {
		want.DefaultSource = *ch.DefaultSource
	}
	if ch.SourceQuery != nil {
		want.SourceQuery = *ch.SourceQuery
	}
	want, err := want.normalize()
	if err != nil {
		return Connector{}, nil, err
	}
	var added []consent.Type
	for _, t := range want.Channels {
		if !slices.Contains(c.Channels, t) {
			added = append(added, t)
		}
	}
	return want, added, nil
}

// UpdateConnector stores the channels, recipient type, default source and
// source query of an installed connector (see Connector.Apply), and its
// VerifiedAt: when İYS last confirmed its rights on every channel, nil when
// some channel was added unchecked. Records already stored keep their
// values.
func (s *Store) UpdateConnector(ctx context.Context, c Connector) (Connector, error) {
	c, err := c.normalize()
	if err != nil {
		return Connector{}, fmt.Errorf("update connector: %w", err)
	}
	chans, verified := c.columns()
	var row connectorRow
	err = s.db.GetContext(ctx, &row, updateConnector, c.BrandCode, chans, c.RecipientType, c.DefaultSource, c.SourceQuery, verified)
	if errors.Is(err, sql.ErrNoRows) {
		return Connector{}, fmt.Errorf("connector %s: %w", c.BrandCode, ErrNoConnector)
	}
	if err != nil {
		return Connector{}, fmt.Errorf("update connector %s: %w", c.BrandCode, err)
	}
	return row.connector(), nil
}

// Uninstalled is what an uninstall did.
type Uninstalled struct {
	Purged int // records deleted (with purge)
}

// UninstallConnector stops serving a brand's connector: runs, imports,
// intake and reports no longer see it, and install brings it back. It is
// refused while a run holds the connector (ErrConnectorRunning) or
// batches of it are in flight (ErrBatchesInFlight): their results would
// be lost. Its records and history are kept; purge also deletes its
// records and what the pulls and source reads kept of them, in the same
// transaction.
func (s *Store) UninstallConnector(ctx context.Context, brandCode string, purge bool) (Uninstalled, error) {
	var out Uninstalled
	err := retry(ctx, func(int) error {
		var err error
		out, err = s.uninstall(ctx, brandCode, purge)
		return err
	})
	if err != nil {
		return Uninstalled{}, fmt.Errorf("uninstall connector %s: %w", brandCode, err)
	}
	return out, nil
}

// uninstall is one try of UninstallConnector's transaction.
func (s *Store) uninstall(ctx context.Context, brandCode string, purge bool) (Uninstalled, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Uninstalled{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var c struct {
		ID      int64 `db:"id"`
		Running bool  `db:"running"`
	}
	// The row lock waits for imports in progress and keeps new ones out; the
	// run lock, held to the end of the transaction, keeps runs out.
	err = tx.GetContext(ctx, &c, lockConnectorForUninstall, brandCode, connectorLockClass)
	if errors.Is(err, sql.ErrNoRows) {
		return Uninstalled{}, ErrNoConnector
	}
	if err != nil {
		return Uninstalled{}, err
	}
	if c.Running {
		return Uninstalled{}, ErrConnectorRunning
	}
	var open int
	if err := tx.GetContext(ctx, &open, countOpenBatches, c.ID); err != nil {
		return Uninstalled{}, err
	}
	if open > 0 {
		return Uninstalled{}, fmt.Errorf("%w (%d)", ErrBatchesInFlight, open)
	}
	if _, err := tx.ExecContext(ctx, uninstall, c.ID); err != nil {
		return Uninstalled{}, err
	}
	var out Uninstalled
	if purge {
		if err := tx.GetContext(ctx, &out.Purged, purgeConsents, c.ID); err != nil {
			return Uninstalled{}, fmt.Errorf("purge records: %w", err)
		}
		for _, q := range []string{purgeSourceUsers, purgeQuarantine, purgeChanges, purgeWebhookCursor} {
			if _, err := tx.ExecContext(ctx, q, c.ID); err != nil {
				return Uninstalled{}, fmt.Errorf("purge: %w", err)
			}
		}
	}
	return out, tx.Commit()
}
