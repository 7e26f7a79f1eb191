// Package httpserver starts and stops iys-sync's HTTP servers (the intake,
// /metrics, the sandbox) one way: every server has read-header, read, write
// and idle timeouts, so that a slow or silent client cannot hold a
// connection (and its goroutine and buffers) for ever, and shuts down
// gracefully when its context ends.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"
)

// Defaults of Options' zero fields.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultShutdownGrace     = 5 * time.Second
)

// Options describe a server. Zero fields take the defaults above.
type Options struct {
	// Name names the server in errors: "intake", "metrics", "sandbox".
	Name string
	// ReadHeaderTimeout bounds reading a request's headers; ReadTimeout the
	// whole request, body included; WriteTimeout everything from the end of
	// the headers to the end of the answer; IdleTimeout how long a
	// keep-alive connection waits for its next request.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	// ShutdownGrace is how long answers in progress may go on once the
	// context ends; then the remaining connections are closed.
	ShutdownGrace time.Duration
	// TLS, when set, serves HTTPS with it (its certificates or
	// GetCertificate); nil serves plain HTTP.
	TLS *tls.Config
	// ErrorLog receives the server's own errors (TLS handshakes, panics);
	// nil: the standard logger.
	ErrorLog *log.Logger
}

// Server is one HTTP server made by New.
type Server struct {
	name  string
	grace time.Duration
	srv   *http.Server
}

// New makes a server of h with o's timeouts (defaults for zero ones).
func New(h http.Handler, o Options) *Server {
	def := func(d, v time.Duration) time.Duration {
		if d <= 0 {
			return v
		}
		return d
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.Name == "" {
		o.Name = "http"
	}
	return &Server{name: o.Name, grace: def(o.ShutdownGrace, DefaultShutdownGrace), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: def(o.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       def(o.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      def(o.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       def(o.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    o.MaxHeaderBytes,
		TLSConfig:         o.TLS,
		ErrorLog:          o.ErrorLog,
	}}
}

// HTTP is the underlying server, to read its settings.
func (s *Server) HTTP() *http.Server { return s.srv }

// Serve answers on ln until ctx ends, then shuts down: new connections are
// refused, answers in progress get ShutdownGrace to finish, and whatever is
// left is closed. It returns nil after a clean shutdown, and the error that
// stopped it otherwise (the listener failed, or the grace ran out).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	done := make(chan error, 1)
	go func() {
		if s.srv.TLSConfig != nil {
			done <- s.srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
			return
		}
		done <- s.srv.Serve(ln)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("%s: serve: %w", s.name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("%s: shut down: %w", s.name, err), s.srv.Close())
	}
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("%s: serve: %w", s.name, serr))
	}
	return err
}

// ListenAndServe listens on addr (TCP), calls listening with the bound
// address (port 0 picks a free one), then serves as Serve does.
func (s *Server) ListenAndServe(ctx context.Context, addr string, listening func(addr string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", s.name, addr, err)
	}
	if listening != nil {
		listening(ln.Addr().String())
	}
	return s.Serve(ctx, ln)
}
