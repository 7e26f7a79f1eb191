package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
)

// runPrune deletes the history past IYS_RETENTION (store.Prune).
func runPrune(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "prune")
	cf := settingFlags(fs, config.Database, config.Retention)
	dryRun := fs.Bool("dry-run", false, "count what would be deleted, delete nothing")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	cfg, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.Prune(ctx, e.now(), cfg.Retention, *dryRun)
	if err != nil {
		return err
	}
	verb := "deleted"
	if *dryRun {
		verb = "would delete"
	}
	_, err = fmt.Fprintf(e.stdout, "prune: %s %s of %s past retention (%s after a RET)\n", verb,
		plural(p.Events, "event", "events"), plural(p.Records, "record", "records"), retentionText(cfg))
	return err
}

// runForget erases a recipient's records and history where retention allows.
func runForget(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "forget")
	cf := settingFlags(fs, config.Database, config.Retention)
	brand := fs.String("brand-code", "", "the connector's brand code")
	recipient := fs.String("recipient", "", "the phone number or email address")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	rec, err := recipientArg(*recipient)
	if err != nil {
		return err
	}
	cfg, st, c, err := loadConnector(ctx, e, cf, *brand)
	if err != nil {
		return err
	}
	defer st.Close()
	f, err := st.Forget(ctx, c.ID, rec, e.now(), cfg.Retention)
	var kept *store.KeptError
	if errors.As(err, &kept) {
		return &partialError{msg: "forget refused: " + kept.Reason}
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "forget: erased %s of %s and their history, %s of the changes feed, %s\n",
		plural(f.Records, "record", "records"), consent.MaskRecipient(rec), plural(f.Feed, "entry", "entries"),
		plural(f.Quarantined, "quarantined feed entry", "quarantined feed entries"))
	return err
}

// retentionText is IYS_RETENTION as written.
func retentionText(cfg config.Config) string {
	if d := cfg.Retention; d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return cfg.Retention.String()
}
