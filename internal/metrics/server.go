package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/httpserver"
)

// Handler serves /metrics, /healthz (the process answers) and /readyz (ready
// reports nil: the database answers and the scheduler runs).
func (m *Metrics) Handler(ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			// The reason is ours (no secret, no personal data): say it.
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// server is the metrics server: scrapes and probes are small and quick.
func (m *Metrics) server(ready func(context.Context) error) *httpserver.Server {
	return httpserver.New(m.Handler(ready), httpserver.Options{
		Name:              "metrics",
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ShutdownGrace:     5 * time.Second,
	})
}

// Serve listens on addr until ctx ends, then shuts down within 5 seconds.
func (m *Metrics) Serve(ctx context.Context, addr string, ready func(context.Context) error, log *zap.Logger) error {
	return m.server(ready).ListenAndServe(ctx, addr, func(bound string) {
		log.Info("metrics listening", zap.String("addr", bound))
	})
}
