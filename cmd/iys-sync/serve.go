package main

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/intake"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/reconcile"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// stopTimeout bounds how long serve waits, after SIGTERM, for the run in
// progress to finish or hand back its batches.
const stopTimeout = 2 * time.Minute

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "serve")
	cf := settingFlags(fs, config.Database, config.IYSAPI, config.Schedule, config.Timezone, config.Window, config.Takeover, config.Push,
		config.Source, config.Intake, config.Metrics, config.Reconcile, config.Logging, config.Retention, config.Webhook)
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("serve takes no operands, got %q", rest[0])
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
	m := metrics.New()
	s, err := newSyncer(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	defer s.Close()
	// The HTTP intake (IYS_INTAKE_ADDR): its tokens are checked before any work starts.
	startIntake, err := newIntake(cfg, s, log)
	if err != nil {
		return err
	}

	if err := watchConnectors(ctx, e, cfg, s, m, "", log); err != nil {
		return err
	}
	// Unfinished: a night the process missed (restarted after the tick) or
	// whose runs failed is run again for those connectors, within its window.
	sched, err := engine.NewScheduler(engine.SchedulerOptions{Spec: cfg.Schedule, Location: cfg.Location(),
		Window: cfg.Window, Job: thenPrune(scheduledRun(s, m, reconcile.Mode(cfg.Reconcile), log), s, cfg, log),
		Unfinished: s.st.UnfinishedNights, Logger: log, Now: e.now, LookEvery: cfg.TakeoverEvery})
	if err != nil {
		return err
	}
	// The webhooks (IYS_WEBHOOK_URL): stopped after the listeners and the
	// scheduler; a batch cut short is sent again by the next serve.
	stopWebhooks, err := startWebhooks(ctx, cfg, s.st, m, log)
	if err != nil {
		return err
	}
	defer stopWebhooks()
	sched.Start()
	return serveUntilStopped(ctx, cfg, s, m, sched, startIntake, log)
}

// scheduledRun is the scheduler's job: a run over the night's connectors,
// whose outcome goes to the metrics, then their reconciliation of the
// previous day (mode).
func scheduledRun(s *syncer, m *metrics.Metrics, mode reconcile.Mode, log *zap.Logger) func(context.Context, engine.Night, []string) {
	return func(ctx context.Context, night engine.Night, brandCodes []string) {
		sum, err := s.eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerSchedule, BrandCodes: brandCodes,
			Deadline: night.Deadline})
		if err != nil {
			log.Error("scheduled run could not start", zap.Error(err))
			return
		}
		m.Runs(sum, time.Now())
		reconcileNight(ctx, s, m, mode, night, sum, log)
	}
}

// thenPrune runs job, then deletes the history past IYS_RETENTION
// (store.Prune): nightly, after the night's run. A failure is logged; the
// next night tries again.
func thenPrune(job func(context.Context, engine.Night, []string), s *syncer, cfg config.Config, log *zap.Logger) func(context.Context, engine.Night, []string) {
	return func(ctx context.Context, night engine.Night, brandCodes []string) {
		job(ctx, night, brandCodes)
		p, err := s.st.Prune(ctx, time.Now(), cfg.Retention, false)
		if err != nil {
			log.Error("prune: the history past retention could not be deleted", zap.Error(err))
			return
		}
		log.Info("prune: history past retention deleted", zap.Int("records", p.Records), zap.Int("events", p.Events))
	}
}

// serveUntilStopped serves the metrics and the intake until ctx ends or a
// listener fails, then stops the scheduler: the run in progress finishes
// or hands back its batches.
func serveUntilStopped(ctx context.Context, cfg config.Config, s *syncer, m *metrics.Metrics, sched *engine.Scheduler,
	startIntake func(context.Context, chan<- error) func() error, log *zap.Logger) error {
	errc := make(chan error, 1)
	if cfg.MetricsAddr != "" {
		go func() {
			errc <- m.Serve(ctx, cfg.MetricsAddr, func(ctx context.Context) error { return s.st.Ping(ctx) }, log)
		}()
	}
	waitIntake := startIntake(ctx, errc)
	select {
	case <-ctx.Done():
	case err := <-errc:
		// The listener failed at start (address in use...): stop, do not run blind.
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		sched.Stop(stopCtx) //nolint:errcheck // the listener's error is the one to report
		return err
	}
	log.Info("stopping: the run in progress finishes or hands back its batches")
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := sched.Stop(stopCtx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if cfg.MetricsAddr != "" {
		if err := <-errc; err != nil {
			return err
		}
	}
	if err := waitIntake(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newIntake prepares the HTTP intake when IYS_INTAKE_ADDR is set (a no-op
// otherwise). The returned start serves it until ctx ends; a listener
// failure while serving goes to errc, as the metrics listener's does, and
// wait returns once the intake has shut down.
func newIntake(cfg config.Config, s *syncer, log *zap.Logger) (start func(ctx context.Context, errc chan<- error) (wait func() error), err error) {
	if cfg.IntakeAddr == "" {
		return func(context.Context, chan<- error) func() error { return func() error { return nil } }, nil
	}
	h, err := intake.New(s.st, cfg.IntakeTokens, log.Named("intake"), intake.WithAllowPending(cfg.PermissionsAllowPending))
	if err != nil {
		return nil, err
	}
	tlsConf, err := intake.LoadTLS(cfg.IntakeTLSCert, cfg.IntakeTLSKey, log.Named("intake"))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, errc chan<- error) func() error {
		done := make(chan error, 1)
		go func() {
			err := intake.Serve(ctx, cfg.IntakeAddr, h, tlsConf, log)
			if err != nil && ctx.Err() == nil {
				select {
				case errc <- err: // stop serve, do not run with the intake down
				default: // serve is stopping for another listener's failure
				}
			}
			done <- err
		}()
		return func() error { return <-done }
	}, nil
}
