package metrics

import (
	"context"
	"testing"
)

// TestServerTimeouts: the metrics server has every timeout (see httpserver).
func TestServerTimeouts(t *testing.T) {
	s := New().server(func(context.Context) error { return nil }).HTTP()
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("timeouts %v %v %v %v", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}
