package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/status"
	"github.com/iys-sync/iys-sync/internal/store"
)

// watchConnectors adds to the engine's hooks what serve and a pushing
// --run-now export of their connectors (brand, or all for ""): the
// deadlines, read when scraped or pushed, and the watchdog clocks, read now.
func watchConnectors(ctx context.Context, e *env, cfg config.Config, s *syncer, m *metrics.Metrics, brand string, log *zap.Logger) error {
	watchDeadlines(m, s.st, cfg, e.now, brand, log)
	return seedMetrics(ctx, s, m, brand)
}

// seedMetrics starts the watchdog clocks from the database, so that a
// restarted process (or a push at the end of a run) reports a connector's
// lag: the last pull to the feed's end and the last completed run, or, for
// an active connector that has none yet, its installation, from which they
// count; and the last reconciliation's drift. brand limits it to one
// connector ("" for all).
func seedMetrics(ctx context.Context, s *syncer, m *metrics.Metrics, brand string) error {
	cs, err := connectorsOf(ctx, s.st, brand)
	if err != nil {
		return err
	}
	for _, c := range cs {
		cur, err := s.st.PullCursors(ctx, c.ID)
		if err != nil {
			return err
		}
		if at := store.PullCompleteAt(cur); !at.IsZero() {
			m.Pull(c.BrandCode, at)
		} else {
			m.Pull(c.BrandCode, c.InstalledAt)
		}
		at, ok, err := s.st.LastCompletedAt(ctx, c.ID)
		switch {
		case err != nil:
			return err
		case ok:
			m.Succeeded(c.BrandCode, at)
		case c.State == store.ConnectorActive:
			m.Succeeded(c.BrandCode, c.InstalledAt)
		}
		if r, ok, err := s.st.LastReconcile(ctx, c.ID); err != nil {
			return err
		} else if ok && r.Result == store.ReconcileDone {
			observeReconcile(m, c.BrandCode, r)
		}
	}
	return nil
}

// watchDeadlines exports the selected connectors' deadlines (brand, or all
// for "") as gauges, read when scraped or pushed.
func watchDeadlines(m *metrics.Metrics, st *store.Store, cfg config.Config, now func() time.Time, brand string, log *zap.Logger) {
	m.WatchDeadlines(func(ctx context.Context) ([]metrics.Deadline, error) {
		cs, err := connectorsOf(ctx, st, brand)
		if err != nil {
			return nil, err
		}
		out := make([]metrics.Deadline, 0, len(cs))
		for _, c := range cs {
			at := now()
			d, err := status.DeadlineOf(ctx, st, c.ID, at, nextScheduled(cfg, at))
			if err != nil {
				return nil, err
			}
			out = append(out, metrics.Deadline{BrandCode: c.BrandCode, AtRisk: d.AtRisk, TooOld: d.TooOld})
		}
		return out, nil
	}, log)
}
