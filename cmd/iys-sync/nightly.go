package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/reconcile"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// reconcileNight is serve's step after a night's run (IYS_RECONCILE): the
// Türkiye day before the night's tick, of each connector the run served,
// within the night's window. The tick, not the clock: a night's catch-ups
// (and a run that goes past midnight) keep to the same day, and each
// night takes the next. Drift goes to the log, the reconciles table (status) and m; a
// reconciliation that fails is logged and counted, and leaves the run as it
// ended.
func reconcileNight(ctx context.Context, s *syncer, m *metrics.Metrics, mode reconcile.Mode, night engine.Night,
	sum engine.Summary, log *zap.Logger) {
	if mode == reconcile.ModeOff {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, night.Deadline)
	defer cancel()
	var cs []consent.ConnectorRef
	for _, c := range sum.Connectors {
		if c.Skipped {
			continue
		}
		conn, err := s.st.Connector(ctx, c.BrandCode)
		if err != nil {
			log.Error("nightly reconciliation skipped", zap.String("brand_code", c.BrandCode), zap.Error(err))
			m.ReconcileFailed(c.BrandCode)
			continue
		}
		cs = append(cs, connectorRef(conn))
	}
	reconcile.Nightly(ctx, s.client, s.st, cs, reconcile.Previous(night.Tick), mode, log.Named("reconcile"),
		func(brand string, row store.Reconcile) { observeReconcile(m, brand, row) })
}

// observeReconcile tells m of a kept reconciliation: a finished one's drift,
// or a failure. A refusal (no right) is neither.
func observeReconcile(m *metrics.Metrics, brand string, row store.Reconcile) {
	switch row.Result {
	case store.ReconcileDone:
		m.Reconciled(brand, map[string]int{string(reconcile.MissingHere): row.MissingHere,
			string(reconcile.StatusDiffers): row.StatusDiffers, string(reconcile.OnlyHereSynced): row.OnlyHereSynced},
			row.Unrepaired, row.FinishedAt)
	case store.ReconcileFailed:
		m.ReconcileFailed(brand)
	}
}
