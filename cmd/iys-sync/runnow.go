package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/term"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// runServeOrNow is the command line without a command: serve, or --run-now.
func runServeOrNow(ctx context.Context, e *env, args []string) error {
	if isRunNow(args) {
		return runNow(ctx, e, args)
	}
	return runServe(ctx, e, args)
}

// isRunNow reports whether the command line asks for --run-now.
func isRunNow(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "--run-now" || a == "-run-now" })
}

func runNow(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "--run-now")
	cf := settingFlags(fs, config.Database, config.IYSAPI, config.Window, config.Push, config.Source, config.Pushgateway, config.Webhook, config.Logging)
	fs.Bool("run-now", true, "run the sync job now and exit")
	brand := fs.String("brand-code", "", "only this connector (default: every active one)")
	maxDur := fs.Duration("max-duration", 0, "stop cleanly after this long (default: IYS_WINDOW)")
	jsonOut := fs.Bool("json", false, "print the summary as JSON on stdout")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("--run-now takes no operands, got %q", rest[0])
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return err
	}
	if err := cfg.CheckWebhook(); err != nil {
		return err
	}
	if *maxDur < 0 {
		return usagef("--max-duration must be positive")
	}
	if *maxDur == 0 {
		*maxDur = cfg.Window
	}
	log := newLogger(cfg, e.stderr)
	defer log.Sync() //nolint:errcheck // stderr
	m := pushMetrics(cfg)
	s, err := newSyncer(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	defer s.Close()
	req := engine.RunRequest{Trigger: engine.TriggerRunNow, Deadline: time.Now().Add(*maxDur)}
	if *brand != "" {
		if _, err := s.st.Connector(ctx, *brand); err != nil {
			return err
		}
		req.BrandCodes = []string{*brand}
	}
	stop := showRunProgress(ctx, e.stderr, s.st, *brand)
	sum, err := s.eng.Run(ctx, req)
	stop()
	deliverWebhooks(ctx, cfg, s.st, m, log, req.BrandCodes...)
	pushRun(ctx, e, cfg, s, m, sum, *brand, log)
	if err != nil {
		return err
	}
	if *jsonOut {
		if err := json.NewEncoder(e.stdout).Encode(newRunSummaryJSON(sum)); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	} else {
		printRunSummary(e.stdout, sum)
	}
	if ctx.Err() != nil {
		return &partialError{msg: "interrupted: the batches in flight were finished or handed back; run again to go on"}
	}
	return runOutcome(sum)
}

// showRunProgress draws, on a terminal only, one line with the record
// counts every second until the returned stop is called.
func showRunProgress(ctx context.Context, w io.Writer, st *store.Store, brand string) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
			}
			var total store.StateCounts = map[consent.State]int{}
			cs, err := st.Connectors(ctx)
			if err != nil {
				continue
			}
			for _, c := range cs {
				if brand != "" && c.BrandCode != brand {
					continue
				}
				states, _, err := st.Counts(ctx, c.ID)
				if err != nil {
					continue
				}
				for k, v := range states {
					total[k] += v
				}
			}
			fmt.Fprintf(w, "\r\033[Kpending %d · in flight %d · synced %d · rejected %d · failed %d",
				total[consent.StatePending], total[consent.StateInFlight], total[consent.StateSynced],
				total[consent.StateRejected], total[consent.StateFailed])
		}
	}()
	return func() { cancel(); <-done }
}
