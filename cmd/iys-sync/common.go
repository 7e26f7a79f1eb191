package main

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/apiuser"
	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/store"
)

// loadAndOpen reads the settings after the flags were parsed and opens
// their database: the start of every command that only needs the store.
// The caller closes the store.
func loadAndOpen(ctx context.Context, e *env, cf *config.Flags) (config.Config, *store.Store, error) {
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return cfg, nil, err
	}
	st, err := openStore(ctx, cfg)
	return cfg, st, err
}

// loadConnector is loadAndOpen, then the connector of brand: the start of
// every command about one connector. The caller closes the store.
func loadConnector(ctx context.Context, e *env, cf *config.Flags, brand string) (config.Config, *store.Store, store.Connector, error) {
	cfg, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return cfg, nil, store.Connector{}, err
	}
	c, err := st.Connector(ctx, brand)
	if err != nil {
		st.Close()
		return cfg, nil, store.Connector{}, err
	}
	return cfg, st, c, nil
}

// openStore connects to the settings' database and applies migrations.
func openStore(ctx context.Context, cfg config.Config) (*store.Store, error) {
	if err := cfg.Require(config.NeedDatabase); err != nil {
		return nil, err
	}
	return store.Open(ctx, cfg.DatabaseURL)
}

// newIYSClient builds the İYS client of the settings: one per process, so
// that every goroutine shares its token, and the token kept in st, so that
// every process of the API user shares it (İYS caps logins per hour), and
// with it the pace of IYS_RATE_LIMIT.
func newIYSClient(cfg config.Config, st *store.Store, log *zap.Logger, opts ...iysclient.Option) (*iysclient.Client, error) {
	if err := cfg.Require(config.NeedIYS); err != nil {
		return nil, err
	}
	creds := iysclient.Credentials{Username: cfg.Username, Password: cfg.Password}
	shared, err := apiuser.New(st, cfg.APIURL, creds, log.Named("apiuser"))
	if err != nil {
		return nil, err
	}
	return iysclient.New(cfg.APIURL, creds, append([]iysclient.Option{iysclient.WithLogger(log),
		iysclient.WithRateLimit(cfg.RateLimit, 1), iysclient.WithTokenVault(shared), iysclient.WithPacer(shared)}, opts...)...)
}

// connectorRef is the connector as a pull or a reconciliation asks for it:
// active, since an operator asked for it by name.
func connectorRef(c store.Connector) consent.ConnectorRef {
	return consent.ConnectorRef{ID: c.ID, BrandCode: c.BrandCode, IYSCode: c.IYSCode, Active: true}
}

// nextScheduled is when the schedule next fires after now, in its zone.
func nextScheduled(cfg config.Config, now time.Time) time.Time {
	sched, err := cron.ParseStandard(cfg.Schedule)
	if err != nil { // validated by config
		return time.Time{}
	}
	return sched.Next(now.In(cfg.Location()))
}

// checkCode validates a brand or İYS code flag (consent.CheckCode). The
// value is echoed quoted, so that a newline or an escape sequence shows as
// such instead of acting on the terminal, and cut short.
func checkCode(flagName, v string) error {
	if v == "" {
		return usagef("--%s is required", flagName)
	}
	if err := consent.CheckCode(v); err != nil {
		if len(v) > 2*consent.MaxCodeLen {
			v = v[:2*consent.MaxCodeLen] + "..."
		}
		return usagef("--%s %v, got %q", flagName, err, v)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
