// Package webhook POSTs each active connector's changes feed to the brand
// (IYS_WEBHOOK_URL), signed with IYS_WEBHOOK_SECRET: the same changes, in
// the same order, as GET /v1/connectors/{brandCode}/changes serves.
//
// The feed (store.ChangesAfter) is the outbox: triggers write a change in
// the transaction that makes it, and the feed places it once committed. A
// connector's cursor (webhook_cursors) moves only after the receiver
// answers 2xx, in the transaction whose row lock makes this replica the
// only one delivering the connector. Delivery is at least once: a process
// that dies between a POST and the cursor's update sends the batch again,
// so receivers dedupe by change id. A receiver that is down keeps the
// changes waiting in the feed, which nothing prunes: it loses none.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/intake"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/store"
)

// Defaults of Options.
const (
	DefaultBatchSize  = 100              // changes per POST
	DefaultPollEvery  = 5 * time.Second  // how often the feeds are read for new changes
	DefaultTimeout    = 30 * time.Second // one POST, answer included
	DefaultFirstRetry = 10 * time.Second // the pause after a first failure, doubled after each (with jitter)
	DefaultMaxRetry   = 10 * time.Minute // the longest pause between tries
)

// Delivery is the body of a POST: a connector's changes, in feed order.
type Delivery struct {
	BrandCode string          `json:"brandCode"`
	Changes   []intake.Change `json:"changes"`
}

// Options configure a Deliverer. URL, Secret, Store and Log are required;
// the others take their Default when zero (Metrics: a registry of its own).
type Options struct {
	URL        string
	Secret     string
	Store      *store.Store
	Metrics    *metrics.Metrics
	Log        *zap.Logger
	Client     *http.Client
	BatchSize  int
	PollEvery  time.Duration
	FirstRetry time.Duration
	MaxRetry   time.Duration
	Now        func() time.Time
}

// Deliverer delivers the connectors' changes; Run keeps it going.
type Deliverer struct {
	o Options
}

// New checks the options and fills in the defaults.
func New(o Options) (*Deliverer, error) {
	if o.URL == "" || o.Secret == "" || o.Store == nil || o.Log == nil {
		return nil, errors.New("webhook: URL, secret, store and logger are required")
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Client == nil {
		// A redirect is not followed: it is answered as a refusal, so that
		// a moved receiver is fixed in the setting, not silently chased.
		o.Client = &http.Client{Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.PollEvery <= 0 {
		o.PollEvery = DefaultPollEvery
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = DefaultFirstRetry
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = DefaultMaxRetry
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Deliverer{o: o}, nil
}

// Run delivers what is due every PollEvery until ctx ends. A failing
// database is logged and tried again at the next poll.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.o.PollEvery)
	defer t.Stop()
	for {
		if err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.o.Log.Error("webhooks: the changes could not be delivered", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue delivers, for every active connector whose next try is due
// and that no other replica is delivering (only those of brandCodes, when
// given), its changes after its cursor, batch after batch until the feed's
// end or a failure.
func (d *Deliverer) DeliverDue(ctx context.Context, brandCodes ...string) error {
	cs, err := d.o.Store.Connectors(ctx)
	if err != nil {
		return err
	}
	var first error
	for _, c := range cs {
		if c.State != store.ConnectorActive || len(brandCodes) > 0 && !slices.Contains(brandCodes, c.BrandCode) {
			continue
		}
		if err := d.deliverConnector(ctx, c); err != nil && first == nil {
			first = fmt.Errorf("connector %s: %w", c.BrandCode, err)
		}
	}
	return first
}

func (d *Deliverer) deliverConnector(ctx context.Context, c store.Connector) error {
	for {
		turn, err := d.o.Store.TakeWebhookTurn(ctx, c.ID, d.o.Now())
		if err != nil {
			return err
		}
		if turn == nil {
			break // not due, or another replica delivers it
		}
		more, err := d.deliverBatch(ctx, c, turn)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	n, oldest, err := d.o.Store.WebhookLag(ctx, c.ID)
	if err != nil {
		return err
	}
	d.o.Metrics.WebhookLag(c.BrandCode, n, oldest, d.o.Now())
	return nil
}

// deliverBatch POSTs the next batch of the connector's changes in its turn,
// and reports whether there may be more.
func (d *Deliverer) deliverBatch(ctx context.Context, c store.Connector, turn *store.WebhookTurn) (more bool, err error) {
	defer turn.Release()
	got, err := d.o.Store.ChangesAfter(ctx, c.ID, turn.DeliveredPos, d.o.BatchSize)
	if err != nil || len(got) == 0 {
		return false, err
	}
	body := Delivery{BrandCode: c.BrandCode, Changes: make([]intake.Change, len(got))}
	for i, ch := range got {
		body.Changes[i] = intake.ChangeOf(ch)
	}
	status, err := d.post(ctx, body)
	if ctx.Err() != nil {
		return false, nil // stopping: the cursor stays, the batch is sent again
	}
	log := d.o.Log.With(zap.String("brand_code", c.BrandCode), zap.Int("changes", len(got)),
		zap.Int64("first_id", got[0].ID), zap.Int64("last_id", got[len(got)-1].ID))
	if err == nil && status/100 == 2 {
		d.o.Metrics.WebhookDelivery(c.BrandCode, metrics.WebhookOK)
		log.Debug("webhooks: changes delivered", zap.Int("status", status))
		return true, turn.Delivered(ctx, got[len(got)-1].Pos, d.o.Now())
	}
	result, msg := metrics.WebhookFailed, ""
	switch {
	case err != nil:
		msg = err.Error()
	case status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests, status/100 == 3:
		result, msg = metrics.WebhookRefused, fmt.Sprintf("the receiver answered HTTP %d", status)
	default:
		msg = fmt.Sprintf("the receiver answered HTTP %d", status)
	}
	next := d.o.Now().Add(d.pause(turn.Attempts + 1))
	d.o.Metrics.WebhookDelivery(c.BrandCode, result)
	fields := []zap.Field{zap.String("error", msg), zap.Int("attempts", turn.Attempts+1), zap.Time("next_attempt_at", next)}
	if result == metrics.WebhookRefused {
		// Not a passing outage: the receiver or the setting needs a fix.
		log.Error("webhooks: the receiver refused the changes; they are sent again until it takes them", fields...)
	} else {
		log.Warn("webhooks: the changes could not be delivered; they are sent again", fields...)
	}
	return false, turn.Failed(ctx, msg, next)
}

// post sends one delivery, signed, and returns the receiver's status.
func (d *Deliverer) post(ctx context.Context, body Delivery) (int, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return 0, fmt.Errorf("encode the changes: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.o.URL, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "iys-sync")
	req.Header.Set(SignatureHeader, Sign([]byte(d.o.Secret), d.o.Now(), buf.Bytes()))
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // only to reuse the connection
	return resp.StatusCode, nil
}

// pause is how long to wait before try attempts+1: FirstRetry doubled per
// failure, with ±50% jitter so that replicas and connectors spread out,
// capped at MaxRetry.
func (d *Deliverer) pause(attempts int) time.Duration {
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(d.o.FirstRetry), backoff.WithMultiplier(2),
		backoff.WithMaxInterval(d.o.MaxRetry), backoff.WithMaxElapsedTime(0))
	p := d.o.FirstRetry
	for range min(attempts, 64) { // past ~20 doublings the cap holds anyway
		p = b.NextBackOff()
	}
	return min(p, d.o.MaxRetry)
}
