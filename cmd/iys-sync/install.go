package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/redact"
	"github.com/iys-sync/iys-sync/internal/rights"
	"github.com/iys-sync/iys-sync/internal/source"
	"github.com/iys-sync/iys-sync/internal/status"
	"github.com/iys-sync/iys-sync/internal/store"
)

func runInstall(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "install")
	cf := settingFlags(fs, config.Database, config.IYSAPI, config.Partner, config.Schedule, config.Timezone, config.Source, config.Logging)
	brand := fs.String("brand-code", "", "the brand's code at İYS")
	iysCode := fs.String("iys-code", "", "the brand owner's İYS code")
	channels := fs.String("channels", "MESAJ,ARAMA,EPOSTA", "the İYS types to sync")
	rtype := fs.String("recipient-type", string(consent.Bireysel), "BIREYSEL or TACIR: the default for imports")
	defSource := fs.String("default-source", string(consent.SourceWeb), "the İYS source (HS_*) of imported lines that name no platform")
	sourceQuery := fs.String("source-query", "", "a SQL query over the brand's own database (IYS_SOURCE_DATABASE_URL) giving one row per user: see README, User-table source")
	skipVerify := fs.Bool("skip-verify", false, "do not ask İYS whether this API user may write for the brand")
	update := fs.Bool("update", false, "change an installed connector: only the flags given change")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("install takes no operands, got %q", rest[0])
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	if *iysCode != "" || !*update {
		if err := checkCode("iys-code", *iysCode); err != nil {
			return err
		}
	}
	types, err := parseChannels(*channels)
	if err != nil {
		return usagef("--channels: %v", err)
	}
	rt, err := consent.ParseRecipientType(*rtype)
	if err != nil {
		return usagef("--recipient-type: %v", err)
	}
	src := consent.Source(*defSource)
	if !src.IsBrandSource() {
		return usagef("--default-source must be one of İYS's brand sources (HS_*), got %q", *defSource)
	}
	cfg, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	want := store.Connector{BrandCode: *brand, IYSCode: *iysCode, Channels: types, RecipientType: rt,
		DefaultSource: src, SourceQuery: strings.TrimSpace(*sourceQuery)}
	if *update {
		return updateInstalled(ctx, e, cfg, st, fs, want, *skipVerify)
	}
	if err := checkSourceQuery(ctx, e, cfg, want); err != nil {
		return err
	}
	now := time.Now()
	if !*skipVerify {
		if err := verifyRights(ctx, e, cfg, st, *iysCode, *brand, types); err != nil {
			return err
		}
		want.VerifiedAt = &now
	}
	want.FirstSyncAt = nextScheduled(cfg, now)
	c, created, err := st.InstallConnector(ctx, want)
	if errors.Is(err, store.ErrConnectorConflict) {
		return fmt.Errorf("%w (to change it: iys-sync install --update --brand-code %s with the flags to change)", err, *brand)
	}
	if err != nil {
		return err
	}
	printInstalled(e.stdout, cfg, c, want.VerifiedAt != nil, created)
	return nil
}

// updateInstalled is install --update: the flags given (set on fs) change
// the installed connector; İYS is asked again about the channels it adds.
func updateInstalled(ctx context.Context, e *env, cfg config.Config, st *store.Store, fs *flag.FlagSet, want store.Connector, skipVerify bool) error {
	have, err := st.Connector(ctx, want.BrandCode)
	if err != nil {
		return err
	}
	if want.IYSCode != "" && want.IYSCode != have.IYSCode {
		return usagef("--update cannot change the İYS code (%s): uninstall the connector and install it again", have.IYSCode)
	}
	var ch store.ConnectorChange
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "channels":
			ch.Channels = want.Channels
		case "recipient-type":
			ch.RecipientType = &want.RecipientType
		case "default-source":
			ch.DefaultSource = &want.DefaultSource
		case "source-query":
			ch.SourceQuery = &want.SourceQuery
		}
	})
	next, added, err := have.Apply(ch)
	if err != nil {
		return err
	}
	if ch.SourceQuery != nil {
		if err := checkSourceQuery(ctx, e, cfg, next); err != nil {
			return err
		}
	}
	switch {
	case len(added) > 0 && skipVerify:
		next.VerifiedAt = nil // not verified for every channel any more
	case len(added) > 0:
		if err := verifyRights(ctx, e, cfg, st, have.IYSCode, have.BrandCode, added); err != nil {
			return err
		}
		now := time.Now()
		next.VerifiedAt = &now
	}
	c, err := st.UpdateConnector(ctx, next)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "connector %s updated: channels %s, recipient type %s, default source %s, %s.\n", c.BrandCode,
		consent.JoinTypes(c.Channels, ","), c.RecipientType, c.DefaultSource, sourceQueryText(c.SourceQuery))
	if len(added) > 0 && !skipVerify {
		fmt.Fprintf(e.stdout, "İYS confirmed this API user may write %s for the brand.\n", consent.JoinTypes(added, ","))
	}
	return nil
}

func sourceQueryText(q string) string {
	if q == "" {
		return "no source query"
	}
	return "a source query"
}

// verifyRights asks İYS whether this API user may write for the brand on
// each channel and reconcile; a refusal says what to turn on in the panel.
func verifyRights(ctx context.Context, e *env, cfg config.Config, st *store.Store, iysCode, brand string, types []consent.Type) error {
	if err := cfg.Require(config.NeedIYS); err != nil {
		return fmt.Errorf("install asks İYS whether this API user may write for the brand (or pass --skip-verify): %w", err)
	}
	client, err := newIYSClient(cfg, st, newLogger(cfg, e.stderr))
	if err != nil {
		return err
	}
	return rights.Check(ctx, client, rights.Request{IntegratorCode: cfg.IntegratorCode, IYSCode: iysCode,
		BrandCode: brand, Channels: types})
}

// printInstalled says what install did, and when the connector first syncs.
func printInstalled(w io.Writer, cfg config.Config, c store.Connector, verified, created bool) {
	verb := "installed"
	if verified {
		verb = "checked with İYS and installed"
	}
	if !created {
		verb = "already installed, nothing changed"
	}
	fmt.Fprintf(w, "connector %s (İYS code %s, %s) %s.\nIts first sync runs at %s (%s), then every night on %q.\n",
		c.BrandCode, c.IYSCode, consent.JoinTypes(c.Channels, ","), verb,
		c.FirstSyncAt.In(cfg.Location()).Format("2006-01-02 15:04"), cfg.Timezone, cfg.Schedule)
}

// checkSourceQuery checks a connector's --source-query before it is stored:
// one SELECT statement; then, when IYS_SOURCE_DATABASE_URL is set, its
// columns and its first page, read-only, every value checked. It says what
// it checked.
func checkSourceQuery(ctx context.Context, e *env, cfg config.Config, c store.Connector) error {
	if c.SourceQuery == "" {
		return nil
	}
	if err := source.CheckQuery(c.SourceQuery); err != nil {
		return usagef("--source-query: %v", err)
	}
	if cfg.SourceDatabaseURL == "" {
		fmt.Fprintln(e.stdout, "Source query: one SELECT statement. Its columns and rows were not checked: IYS_SOURCE_DATABASE_URL "+
			"is not set (set it and run install again to check them; runs need it to read the source).")
		return nil
	}
	db, err := source.Open(cfg.SourceDatabaseURL, cfg.SourceStatementTimeout)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := source.New(nil, db, nil).Probe(ctx, c)
	if err != nil {
		return fmt.Errorf("--source-query, checked on IYS_SOURCE_DATABASE_URL (%s): %w", redact.DSN(cfg.SourceDatabaseURL), err)
	}
	fmt.Fprintf(e.stdout, "Source query checked on %s, read-only: its columns are as expected; its first page took %s: %s, %s, %s rejected.\n",
		redact.DSN(cfg.SourceDatabaseURL), res.FirstPage.Round(time.Millisecond), plural(res.Users, "user", "users"),
		plural(res.Rows, "valid consent", "valid consents"), plural(res.RejectedValues, "value", "values"))
	if res.RejectedValues > 0 {
		fmt.Fprintln(e.stdout, "Rejected values are skipped at each run and logged, recipient masked: fix them in the source or the query.")
	}
	return nil
}

// parseChannels reads --channels: İYS types, comma-separated, each once.
func parseChannels(s string) ([]consent.Type, error) {
	var out []consent.Type
	for _, p := range strings.Split(s, ",") {
		t, err := consent.ParseType(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		for _, seen := range out {
			if seen == t {
				return nil, fmt.Errorf("%s is named twice", t)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// connectorJSON is one entry of connectors --json.
type connectorJSON struct {
	BrandCode     string   `json:"brandCode"`
	IYSCode       string   `json:"iysCode"`
	Channels      []string `json:"channels"`
	RecipientType string   `json:"recipientType"`
	DefaultSource string   `json:"defaultSource"`
	State         string   `json:"state"`
	InstalledAt   string   `json:"installedAt"`
	FirstSyncAt   string   `json:"firstSyncAt"`
	Verified      bool     `json:"verified"`
}

func runConnectors(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "connectors")
	cf := settingFlags(fs, config.Database, config.Timezone)
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	cfg, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := st.Connectors(ctx)
	if err != nil {
		return err
	}
	if *jsonOut {
		out := struct {
			Connectors []connectorJSON `json:"connectors"`
		}{Connectors: []connectorJSON{}}
		for _, c := range cs {
			out.Connectors = append(out.Connectors, connectorJSON{
				BrandCode: c.BrandCode, IYSCode: c.IYSCode, Channels: typeStrings(c.Channels),
				RecipientType: string(c.RecipientType), DefaultSource: string(c.DefaultSource), State: c.State,
				InstalledAt: status.RFC3339(c.InstalledAt), FirstSyncAt: status.RFC3339(c.FirstSyncAt), Verified: c.VerifiedAt != nil,
			})
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if len(cs) == 0 {
		fmt.Fprintln(e.stdout, "No connectors. Install one with: iys-sync install --brand-code CODE --iys-code CODE")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRAND\tIYS CODE\tCHANNELS\tRECIPIENT\tSTATE\tINSTALLED\tFIRST SYNC")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.BrandCode, c.IYSCode, consent.JoinTypes(c.Channels, ","), c.RecipientType,
			c.State, c.InstalledAt.In(cfg.Location()).Format("2006-01-02 15:04"), c.FirstSyncAt.In(cfg.Location()).Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

func typeStrings(ts []consent.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}
