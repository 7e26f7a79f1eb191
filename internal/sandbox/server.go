package sandbox

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/iys-sync/iys-sync/internal/httpserver"
)

// Sandbox is a local İYS: an http.Handler speaking the İYS API, plus the
// admin endpoints of the package documentation. It starts no goroutine:
// bulk requests are processed, in order, by the first call that comes after
// their async delay.
type Sandbox struct {
	opts    Options
	handler http.Handler
	auth    *tokens
	faults  *faults
	bulk    *bucket
	stats   *stats

	mu         sync.Mutex // guards st and access
	st         *state
	access     *access
	generation uint64
}

// New checks the options, fills their defaults and builds a sandbox.
func New(opts Options) (*Sandbox, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sandbox{
		opts:   opts,
		auth:   newTokens(),
		faults: newFaults(opts.Seed),
		bulk:   &bucket{rate: opts.BulkRate},
		stats:  newStats(),
		st:     newState(opts.Seed, 0, opts.Brands),
		access: newAccess(opts),
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves the İYS API and the admin endpoints.
func (s *Sandbox) Handler() http.Handler { return s.handler }

// Seed is the seed in use, the time-based one when Options.Seed was 0: pass
// it back as Options.Seed to replay the same faults, ids and result order.
func (s *Sandbox) Seed() int64 { return s.opts.Seed }

// Reset empties the sandbox, as POST /_sandbox/reset does: records, bulk
// requests, changes, brands and rights back to the options, the counters and
// the rate limits. Live tokens stay valid; ids and cursors of before are
// refused.
func (s *Sandbox) Reset() {
	s.mu.Lock()
	s.generation++
	s.st = newState(s.opts.Seed, s.generation, s.opts.Brands)
	s.access = newAccess(s.opts)
	s.mu.Unlock()
	s.stats.reset()
	s.bulk.reset()
	s.auth.resetLogins()
}

const brandPath = "/sps/{iysCode}/brands/{brandCode}"

func (s *Sandbox) routes() http.Handler {
	mux := http.NewServeMux()
	// The İYS API. Order of the checks: latency, injected fault, token,
	// brand partnership, rate limit, then the call itself.
	s.api(mux, "POST /oauth2/token", s.token)
	s.api(mux, "GET /sps/{iysCode}/brands", s.authed(s.brands))
	s.api(mux, "GET /integrator/{integratorCode}/sps/{iysCode}", s.authed(s.integrator))
	brand := func(pattern string, h http.HandlerFunc) {
		s.api(mux, pattern, s.authed(s.brandGate(h)))
	}
	brand("POST "+brandPath+"/consents", s.addConsent)
	brand("POST "+brandPath+"/consents/request", s.bulkRate(s.submitBulk))
	brand("GET "+brandPath+"/consents/request/{requestId}", s.bulkResult)
	brand("POST "+brandPath+"/consents/status", s.consentStatus)
	brand("POST "+brandPath+"/consents/{recipientType}/status/{type}", s.consentStatuses)
	brand("GET "+brandPath+"/consents/changes", s.changes)
	brand("GET "+brandPath+"/changes/{reportDate}/file", s.changesFile)
	brand("GET "+brandPath+"/changes/{reportDate}/recipients/{recipientType}", s.changesSummary)

	// Admin: no token, no faults, no latency.
	mux.HandleFunc("GET /_sandbox/consents", s.adminConsents)
	mux.HandleFunc("PUT /_sandbox/consents", s.adminOverwrite)
	mux.HandleFunc("DELETE /_sandbox/consents", s.adminDelete)
	mux.HandleFunc("POST /_sandbox/citizen", s.adminCitizen)
	mux.HandleFunc("GET /_sandbox/stats", s.adminStats)
	mux.HandleFunc("POST /_sandbox/reset", s.adminReset)
	mux.HandleFunc("GET /_sandbox/rights", s.adminRights)
	mux.HandleFunc("POST /_sandbox/rights", s.adminAddRight)
	mux.HandleFunc("POST /_sandbox/deny", s.adminDeny)
	mux.HandleFunc("POST /_sandbox/brands", s.adminBrand)
	return mux
}

// api registers an İYS API endpoint: counted, delayed, and failing at
// random before anything else.
func (s *Sandbox) api(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	inner := s.latency(s.failing(h))
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.stats.request(pattern)
		inner(w, r)
	})
}

// server is the sandbox's HTTP server: answers in flight get 5 seconds
// when the context ends.
func (s *Sandbox) server() *httpserver.Server {
	return httpserver.New(s.handler, httpserver.Options{Name: "sandbox", ShutdownGrace: 5 * time.Second})
}

// Serve answers on ln until ctx ends, then shuts down gracefully.
func (s *Sandbox) Serve(ctx context.Context, ln net.Listener) error {
	return s.server().Serve(ctx, ln)
}

// ListenAndServe builds a sandbox, listens on opts.Addr (port 0 picks a free
// one), calls ready with the bound address once connections are accepted,
// and serves until ctx ends.
func ListenAndServe(ctx context.Context, opts Options, ready func(addr string)) error {
	s, err := New(opts)
	if err != nil {
		return err
	}
	return s.server().ListenAndServe(ctx, s.opts.Addr, ready)
}
