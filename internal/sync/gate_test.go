package sync_test

import (
	"io"
	"net"
	"net/url"
	gosync "sync"
	"testing"
)

// gate is a TCP proxy in front of a PostgreSQL cluster, for keeping the
// database out of reach for as long as a test wants: closed, it refuses new
// connections (connection refused, as a server that is down); the
// connections it carries end when the server ends them (a restart's fast
// shutdown), or when the gate is stopped.
type gate struct {
	t      *testing.T
	target string // host:port of the server
	addr   string // host:port of the gate, the same across close and open

	mu    gosync.Mutex
	ln    net.Listener // nil while closed
	pipes map[net.Conn]bool
	wg    gosync.WaitGroup
}

// newGate opens a gate to the server of rawURL and stops it when the test
// ends.
func newGate(t *testing.T, rawURL string) *gate {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{t: t, target: u.Host, pipes: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.serve(ln)
	t.Cleanup(g.stop)
	return g
}

// url is rawURL with the gate in place of the server.
func (g *gate) url(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		g.t.Fatal(err)
	}
	u.Host = g.addr
	return u.String()
}

func (g *gate) serve(ln net.Listener) {
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", g.target)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.pipes[c], g.pipes[up] = true, true
			g.mu.Unlock()
			g.wg.Add(2)
			go g.pipe(c, up)
			go g.pipe(up, c)
		}
	}()
}

// pipe copies one way until either side ends, then ends both.
func (g *gate) pipe(dst, src net.Conn) {
	defer g.wg.Done()
	io.Copy(dst, src) //nolint:errcheck // either side ending ends the pipe
	dst.Close()
	src.Close()
	g.mu.Lock()
	delete(g.pipes, dst)
	delete(g.pipes, src)
	g.mu.Unlock()
}

// close refuses new connections; those open go on until the server ends
// them.
func (g *gate) close() {
	g.mu.Lock()
	ln := g.ln
	g.ln = nil
	g.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// open takes new connections again, on the same address. It may be
// called from any goroutine.
func (g *gate) open() {
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		g.t.Errorf("reopen the gate on %s: %v", g.addr, err)
		return
	}
	g.serve(ln)
}

// cut closes the gate and every connection through it, as a network that
// drops everything.
func (g *gate) cut() {
	g.close()
	g.mu.Lock()
	for c := range g.pipes {
		c.Close()
	}
	g.mu.Unlock()
}

// stop cuts, and waits for the gate's goroutines.
func (g *gate) stop() {
	g.cut()
	g.wg.Wait()
}
