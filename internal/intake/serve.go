package intake

import (
	"context"
	"crypto/tls"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/httpserver"
)

// newServer is the intake's server. A request of 10,000 consents is up to
// 16 MiB: ReadTimeout leaves a slow client a minute to send it, WriteTimeout
// covers waiting for a slot, reading and merging it. On shutdown requests in
// progress (each one transaction: stored whole or not at all) get 30 seconds.
func newServer(h http.Handler, tlsConf *tls.Config, log *zap.Logger) *httpserver.Server {
	return httpserver.New(h, httpserver.Options{
		Name:              "intake",
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ShutdownGrace:     30 * time.Second,
		TLS:               tlsConf,
		ErrorLog:          zap.NewStdLog(log.Named("intake-http")),
	})
}

// Serve listens on addr until ctx ends, then shuts down (see newServer).
// tlsConf, when set (see LoadTLS), serves HTTPS.
func Serve(ctx context.Context, addr string, h http.Handler, tlsConf *tls.Config, log *zap.Logger) error {
	return newServer(h, tlsConf, log).ListenAndServe(ctx, addr, func(bound string) {
		log.Info("intake listening", zap.String("addr", bound), zap.Bool("tls", tlsConf != nil))
	})
}
