package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Errors about connectors.
var (
	ErrNoConnector       = errors.New("no such connector: install it first")
	ErrConnectorConflict = errors.New("connector already installed with other values")
)

// Connector states.
const (
	ConnectorActive = "active"
	ConnectorPaused = "paused"
)

// Connector is one brand this program syncs.
type Connector struct {
	ID            int64
	BrandCode     string
	IYSCode       string
	Channels      []consent.Type // in İYS's order: MESAJ, ARAMA, EPOSTA
	RecipientType consent.RecipientType
	DefaultSource consent.Source
	State         string
	InstalledAt   time.Time
	FirstSyncAt   time.Time
	VerifiedAt    *time.Time // nil: installed with --skip-verify
	// SourceQuery is a SQL query over the brand's own database whose rows
	// are read each run (internal/source); "" when none.
	SourceQuery string
}

// connectorRow is a connectors row: the table's row type (see rowTypes).
type connectorRow struct {
	ID            int64          `db:"id"`
	BrandCode     string         `db:"brand_code"`
	IYSCode       string         `db:"iys_code"`
	Channels      pq.StringArray `db:"channels"`
	RecipientType string         `db:"recipient_type"`
	DefaultSource string         `db:"default_source"`
	State         string         `db:"state"`
	InstalledAt   time.Time      `db:"installed_at"`
	FirstSyncAt   time.Time      `db:"first_sync_at"`
	VerifiedAt    sql.NullTime   `db:"verified_at"`
	SourceQuery   sql.NullString `db:"source_query"`
	SourceReadAt  sql.NullTime   `db:"source_read_at"` // when the source was last read
}

// Statements of sql/connectors.sql.
var (
	installConnector = stmt("InstallConnector")
	connectorByBrand = stmt("ConnectorByBrand")
	listConnectors   = stmt("Connectors")
)

func (r connectorRow) connector() Connector {
	c := Connector{
		ID: r.ID, BrandCode: r.BrandCode, IYSCode: r.IYSCode,
		RecipientType: consent.RecipientType(r.RecipientType), DefaultSource: consent.Source(r.DefaultSource),
		State: r.State, InstalledAt: r.InstalledAt, FirstSyncAt: r.FirstSyncAt, SourceQuery: r.SourceQuery.String,
	}
	for _, ch := range r.Channels {
		c.Channels = append(c.Channels, consent.Type(ch))
	}
	if r.VerifiedAt.Valid {
		t := r.VerifiedAt.Time
		c.VerifiedAt = &t
	}
	return c
}

// normalize fills defaults and checks values, so that an install compares
// equal to the same install made before.
func (c Connector) normalize() (Connector, error) {
	if c.BrandCode == "" || c.IYSCode == "" {
		return c, errors.New("brand code and İYS code are required")
	}
	if c.FirstSyncAt.IsZero() {
		return c, errors.New("first sync time is required")
	}
	if c.RecipientType == "" {
		c.RecipientType = consent.Bireysel
	}
	if _, err := consent.ParseRecipientType(string(c.RecipientType)); err != nil {
		return c, err
	}
	if c.DefaultSource == "" {
		c.DefaultSource = consent.SourceWeb
	}
	if !c.DefaultSource.IsBrandSource() {
		return c, fmt.Errorf("default source %q is not one of İYS's brand sources", c.DefaultSource)
	}
	if len(c.Channels) == 0 {
		return c, errors.New("at least one channel is required")
	}
	var chans []consent.Type
	for _, t := range consent.Types { // İYS's order, no duplicates
		if slices.Contains(c.Channels, t) {
			chans = append(chans, t)
		}
	}
	for _, ch := range c.Channels {
		if _, err := consent.ParseType(string(ch)); err != nil {
			return c, err
		}
	}
	c.Channels = chans
	return c, nil
}

// columns are the channels and verified_at columns of the connector.
func (c Connector) columns() (pq.StringArray, sql.NullTime) {
	chans := make(pq.StringArray, len(c.Channels))
	for i, ch := range c.Channels {
		chans[i] = string(ch)
	}
	var verified sql.NullTime
	if c.VerifiedAt != nil {
		verified = sql.NullTime{Time: *c.VerifiedAt, Valid: true}
	}
	return chans, verified
}

// InstallConnector registers a connector. Installing the same brand again with
// the same values returns the stored connector and created=false, changing
// nothing; with other values it fails with ErrConnectorConflict, saying what
// differs. FirstSyncAt and VerifiedAt of a repeat install are ignored.
func (s *Store) InstallConnector(ctx context.Context, c Connector) (Connector, bool, error) {
	c, err := c.normalize()
	if err != nil {
		return Connector{}, false, fmt.Errorf("install connector: %w", err)
	}
	chans, verified := c.columns()
	var row connectorRow
	err = s.db.GetContext(ctx, &row, installConnector,
		c.BrandCode, c.IYSCode, chans, c.RecipientType, c.DefaultSource, c.FirstSyncAt, verified, c.SourceQuery)
	if err == nil {
		return row.connector(), true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Connector{}, false, fmt.Errorf("install connector %s: %w", c.BrandCode, err)
	}
	// Already there (maybe installed a moment ago by a concurrent install).
	have, err := s.Connector(ctx, c.BrandCode)
	if err != nil {
		return Connector{}, false, fmt.Errorf("install connector: %w", err)
	}
	if diff := differences(have, c); diff != "" {
		return Connector{}, false, fmt.Errorf("install connector %s: %w: %s", c.BrandCode, ErrConnectorConflict, diff)
	}
	return have, false, nil
}

// differences says how want differs from the installed connector have.
func differences(have, want Connector) string {
	var d []string
	if have.IYSCode != want.IYSCode {
		d = append(d, fmt.Sprintf("İYS code is %s, not %s", have.IYSCode, want.IYSCode))
	}
	if !slices.Equal(have.Channels, want.Channels) {
		d = append(d, fmt.Sprintf("channels are %s, not %s", consent.JoinTypes(have.Channels, ","), consent.JoinTypes(want.Channels, ",")))
	}
	if have.RecipientType != want.RecipientType {
		d = append(d, fmt.Sprintf("recipient type is %s, not %s", have.RecipientType, want.RecipientType))
	}
	if have.DefaultSource != want.DefaultSource {
		d = append(d, fmt.Sprintf("default source is %s, not %s", have.DefaultSource, want.DefaultSource))
	}
	if have.SourceQuery != want.SourceQuery {
		d = append(d, fmt.Sprintf("source query is %q, not %q", have.SourceQuery, want.SourceQuery))
	}
	return strings.Join(d, "; ")
}

// Connector returns the connector of a brand, or an error wrapping ErrNoConnector.
func (s *Store) Connector(ctx context.Context, brandCode string) (Connector, error) {
	var row connectorRow
	err := s.db.GetContext(ctx, &row, connectorByBrand, brandCode)
	if errors.Is(err, sql.ErrNoRows) {
		return Connector{}, fmt.Errorf("connector %s: %w", brandCode, ErrNoConnector)
	}
	if err != nil {
		return Connector{}, fmt.Errorf("connector %s: %w", brandCode, err)
	}
	return row.connector(), nil
}

// Connectors lists every connector by brand code.
func (s *Store) Connectors(ctx context.Context) ([]Connector, error) {
	var rows []connectorRow
	if err := s.db.SelectContext(ctx, &rows, listConnectors); err != nil {
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	out := make([]Connector, len(rows))
	for i, r := range rows {
		out[i] = r.connector()
	}
	return out, nil
}
