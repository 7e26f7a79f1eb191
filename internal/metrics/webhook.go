package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// webhookMetrics count the webhooks' deliveries and measure what waits.
type webhookMetrics struct {
	deliveries *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
}

// Results of a webhook delivery.
const (
	WebhookOK      = "ok"      // the receiver answered 2xx
	WebhookFailed  = "failed"  // a network error, a timeout, a 5xx, 408 or 429: tried again later
	WebhookRefused = "refused" // another 4xx (or a 3xx): logged as an error, tried again later all the same
)

func newWebhookMetrics(reg *prometheus.Registry) webhookMetrics {
	w := webhookMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iys_webhook_deliveries_total",
			Help: "Webhook POSTs of a connector's changes, by result: ok, failed (network, 5xx, 408, 429) or refused (another 4xx or a 3xx).",
		}, []string{"brand_code", "result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iys_webhook_lag_changes",
			Help: "Changes of the connector's feed not yet delivered by webhook, as of the deliverer's last look.",
		}, []string{"brand_code"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iys_webhook_oldest_undelivered_seconds",
			Help: "Age of the connector's oldest change not yet delivered by webhook (0: none), as of the deliverer's last look.",
		}, []string{"brand_code"}),
	}
	reg.MustRegister(w.deliveries, w.lag, w.oldest)
	return w
}

// WebhookDelivery counts one POST of a connector's changes with its result.
func (m *Metrics) WebhookDelivery(brand, result string) {
	m.webhook.deliveries.WithLabelValues(brand, result).Inc()
}

// WebhookLag records how many of a connector's changes wait for delivery,
// and since when the oldest (zero: none waits).
func (m *Metrics) WebhookLag(brand string, changes int64, oldest, now time.Time) {
	m.webhook.lag.WithLabelValues(brand).Set(float64(changes))
	age := 0.0
	if changes > 0 && !oldest.IsZero() {
		age = max(now.Sub(oldest).Seconds(), 0)
	}
	m.webhook.oldest.WithLabelValues(brand).Set(age)
}
