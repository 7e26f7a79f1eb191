package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/webhook"
)

// startWebhooks runs serve's webhook deliverer (IYS_WEBHOOK_URL) until ctx
// ends or stop is called; stop returns once it has stopped. A no-op when
// the URL is unset.
func startWebhooks(ctx context.Context, cfg config.Config, st *store.Store, m *metrics.Metrics, log *zap.Logger) (stop func(), err error) {
	if cfg.WebhookURL == "" {
		return func() {}, nil
	}
	d, err := newDeliverer(cfg, st, m, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	log.Info("webhooks: delivering the changes feed", zap.String("url", cfg.WebhookURL))
	return func() { cancel(); <-done }, nil
}

// onceTimeout bounds the delivery that pull and --run-now make as they end.
const onceTimeout = 2 * time.Minute

// deliverWebhooks delivers, before pull or --run-now ends, what is due of
// the connectors of brandCodes (every active one when none), once: a
// failure is logged and left to serve's retries, and the exit status stays
// that of the work. A no-op without IYS_WEBHOOK_URL.
func deliverWebhooks(ctx context.Context, cfg config.Config, st *store.Store, m *metrics.Metrics, log *zap.Logger, brandCodes ...string) {
	if cfg.WebhookURL == "" || ctx.Err() != nil {
		return
	}
	d, err := newDeliverer(cfg, st, m, log)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, onceTimeout)
		defer cancel()
		err = d.DeliverDue(ctx, brandCodes...)
	}
	if err != nil {
		log.Error("webhooks: the changes could not be delivered; serve delivers them", zap.Error(err))
	}
}

// newDeliverer is the settings' webhook deliverer, for serve and for the
// delivery pull and --run-now make as they end.
func newDeliverer(cfg config.Config, st *store.Store, m *metrics.Metrics, log *zap.Logger) (*webhook.Deliverer, error) {
	return webhook.New(webhook.Options{URL: cfg.WebhookURL, Secret: cfg.WebhookSecret, Store: st, Metrics: m,
		Log: log.Named("webhook")})
}
