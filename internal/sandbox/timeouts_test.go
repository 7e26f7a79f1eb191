package sandbox

import "testing"

// TestServerTimeouts: the sandbox's server has every timeout (see httpserver).
func TestServerTimeouts(t *testing.T) {
	sb, err := New(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := sb.server().HTTP()
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("timeouts %v %v %v %v", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}
