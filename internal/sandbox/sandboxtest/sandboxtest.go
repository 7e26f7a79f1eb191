// Package sandboxtest serves the sandbox İYS to tests over real HTTP on
// 127.0.0.1, and reads and drives it through its admin endpoints (see the
// sandbox package's documentation) with a typed client, Admin.
//
// Its types are its own reading of the admin endpoints' JSON, not the
// sandbox's: a test through this package checks the wire, as any client of
// the sandbox would see it.
package sandboxtest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// Server is a sandbox served for one test.
type Server struct {
	Sandbox *sandbox.Sandbox
	URL     string // base URL of the İYS API and of the admin endpoints
	Admin   *Admin
}

// Start builds a sandbox with opts and serves it until the test ends. A zero
// Seed is made 1, so that a test's faults, ids and result orders repeat.
func Start(t testing.TB, opts sandbox.Options) *Server {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	return serve(t, sb, sb.Handler())
}

// Through serves the same sandbox again behind wrap, on a URL of its own,
// until the test ends: for tests that watch or edit İYS's answers. Admin
// calls to the new Server go through wrap too.
func (s *Server) Through(t testing.TB, wrap func(http.Handler) http.Handler) *Server {
	t.Helper()
	return serve(t, s.Sandbox, wrap(s.Sandbox.Handler()))
}

func serve(t testing.TB, sb *sandbox.Sandbox, h http.Handler) *Server {
	srv := httptest.NewServer(h) // 127.0.0.1: the client allows plain http on loopback
	t.Cleanup(srv.Close)
	return &Server{Sandbox: sb, URL: srv.URL, Admin: NewAdmin(t, srv.URL)}
}
