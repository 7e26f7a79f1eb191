// Package metricstest stands in for a Prometheus Pushgateway in tests.
package metricstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Push is one push the gateway received.
type Push struct {
	Method, Path string
	// Families maps each pushed family's name to its text exposition.
	Families map[string]string
}

// Gateway records every push and answers with Status (200 when 0).
type Gateway struct {
	URL string

	mu     sync.Mutex
	status int
	pushes []Push
}

// NewGateway serves a gateway on a loopback port until the test ends.
func NewGateway(t *testing.T) *Gateway {
	g := &Gateway{}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// Answer makes the gateway answer every later push with status.
func (g *Gateway) Answer(status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status = status
}

// Pushes is what the gateway received, in order.
func (g *Gateway) Pushes() []Push {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Push(nil), g.pushes...)
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fams := map[string]string{}
	dec := expfmt.NewDecoder(strings.NewReader(string(body)), expfmt.ResponseFormat(r.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			break
		}
		var b strings.Builder
		_, _ = expfmt.MetricFamilyToText(&b, &mf)
		fams[mf.GetName()] = b.String()
	}
	g.mu.Lock()
	g.pushes = append(g.pushes, Push{Method: r.Method, Path: r.URL.Path, Families: fams})
	status := g.status
	g.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
}
