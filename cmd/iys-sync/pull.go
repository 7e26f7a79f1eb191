package main

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/store"
)

func runPull(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "pull")
	cf := settingFlags(fs, config.Database, config.IYSAPI, config.Pushgateway, config.Webhook, config.Logging)
	brand := fs.String("brand-code", "", "the connector's brand code")
	reset := fs.Bool("reset-cursor", false, "forget the stored cursors and pull from the beginning of the 7 days İYS keeps (when İYS refuses a cursor)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("pull takes no operands, got %q", rest[0])
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return err
	}
	if err := cfg.CheckWebhook(); err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	defer log.Sync() //nolint:errcheck // stderr
	m := pushMetrics(cfg)
	st, client, err := openIYS(ctx, cfg, log, observe(m)...)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.Connector(ctx, *brand)
	if err != nil {
		return err
	}
	res, err := pullNow(ctx, st, newPuller(st, client, log, m), c, *reset, log)
	deliverWebhooks(ctx, cfg, st, m, log, c.BrandCode)
	pushPull(ctx, cfg, m, c.BrandCode, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "pulled %s: %d changes read in %d pages, %d applied (newer than our records)", c.BrandCode, res.Changes, res.Pages, res.Applied)
	if res.Quarantined > 0 {
		fmt.Fprintf(e.stdout, ", %d unreadable kept in quarantine (table pull_quarantine, with the reasons)", res.Quarantined)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// pullNow pulls the connector's changes now; with reset, from the
// beginning of the days İYS keeps.
func pullNow(ctx context.Context, st *store.Store, puller *pull.Puller, c store.Connector, reset bool, log *zap.Logger) (pull.Result, error) {
	if reset {
		// Newest-wins makes the changes read again harmless.
		if _, err := st.ResetPullCursors(ctx, c.ID); err != nil {
			return pull.Result{}, err
		}
		log.Warn("pull cursors reset: pulling from the beginning of the days İYS keeps", zap.String("brand_code", c.BrandCode))
	}
	return puller.PullConnector(ctx, connectorRef(c))
}
