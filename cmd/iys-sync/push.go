package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/metrics"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// A --run-now or pull run by a CronJob has no /metrics to scrape: with
// IYS_PUSHGATEWAY_URL set it pushes its metrics there as it ends, grouped
// by job "iys-sync" and instance: the --brand-code it was given, or "all".
// Not the host: a CronJob's pod has a new name every run, and each would
// leave a group behind at the Pushgateway. A push that fails is logged; the
// command's exit status stays that of its work.

// pushMetrics is the metrics a command collects to push; nil, collecting
// nothing, when IYS_PUSHGATEWAY_URL is unset.
func pushMetrics(cfg config.Config) *metrics.Metrics {
	if cfg.PushgatewayURL == "" {
		return nil
	}
	return metrics.New()
}

// pushInstance is the instance label of a push: the command's connector,
// or "all".
func pushInstance(brand string) string {
	if brand == "" {
		return "all"
	}
	return brand
}

// pushRun pushes a --run-now's metrics, replacing its group: its requests
// and batches, the connectors' runs, and, read from the database, their
// last completed run, last pull and deadlines. An interrupted run pushes
// too.
func pushRun(ctx context.Context, e *env, cfg config.Config, s *syncer, m *metrics.Metrics, sum engine.Summary, brand string, log *zap.Logger) {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metrics.PushTimeout)
	defer cancel()
	m.Runs(sum, e.now())
	if err := watchConnectors(ctx, e, cfg, s, m, brand, log); err != nil {
		log.Warn("reading the connectors' last run and pull for the metrics failed: pushing without them", zap.Error(err))
	}
	push(ctx, cfg, m, pushInstance(brand), metrics.ReplaceGroup, log)
}

// pushPull pushes a pull's metrics (its requests, the pull's end, entries
// quarantined) into the connector's group, leaving the rest of the group,
// such as a run's status, as it was.
func pushPull(ctx context.Context, cfg config.Config, m *metrics.Metrics, brand string, log *zap.Logger) {
	if m == nil {
		return
	}
	push(context.WithoutCancel(ctx), cfg, m, brand, metrics.MergeIntoGroup, log)
}

func push(ctx context.Context, cfg config.Config, m *metrics.Metrics, instance string, mode metrics.PushMode, log *zap.Logger) {
	if err := m.Push(ctx, cfg.PushgatewayURL, instance, mode); err != nil {
		log.Warn("metrics not pushed: the command's outcome stands", zap.String("instance", instance), zap.Error(err))
		return
	}
	log.Info("metrics pushed", zap.String("job", metrics.PushJob), zap.String("instance", instance))
}
