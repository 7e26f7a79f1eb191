package httpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNewFillsEveryTimeout: a server made with no options still has every
// timeout; given ones are kept.
func TestNewFillsEveryTimeout(t *testing.T) {
	s := New(http.NotFoundHandler(), Options{}).HTTP()
	if s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.ReadTimeout != DefaultReadTimeout ||
		s.WriteTimeout != DefaultWriteTimeout || s.IdleTimeout != DefaultIdleTimeout || s.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("defaults: %+v", s)
	}
	s = New(http.NotFoundHandler(), Options{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4}).HTTP()
	if s.ReadHeaderTimeout != 1 || s.ReadTimeout != 2 || s.WriteTimeout != 3 || s.IdleTimeout != 4 {
		t.Fatalf("given: %+v", s)
	}
}

// serve runs a server with short timeouts on a free port until the test ends.
func serve(t *testing.T, h http.Handler, o Options) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- New(h, o).ListenAndServe(ctx, "127.0.0.1:0", func(a string) { addrs <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-addrs:
		return a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return ""
}

// closedWithin reads conn until the server closes it, and fails if that
// takes longer than d.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d)) //nolint:errcheck
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection was still open after %v", what, d)
	}
}

// TestSlowClientsAreCut: a client that sends its headers a byte at a time
// (slowloris), one that sends no body, and one idle between requests are
// disconnected by the server's timeouts.
func TestSlowClientsAreCut(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // a slow body ends in an error
		fmt.Fprintln(w, "ok")
	}), Options{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond,
		WriteTimeout: time.Second, IdleTimeout: 300 * time.Millisecond})

	// Headers that never end.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
	closedWithin(t, conn, 3*time.Second, "unfinished headers")

	// A body announced and never sent.
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	fmt.Fprint(conn2, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
	closedWithin(t, conn2, 3*time.Second, "unfinished body")

	// A keep-alive connection left idle after its answer.
	conn3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn3.Close()
	fmt.Fprint(conn3, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn3), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	closedWithin(t, conn3, 3*time.Second, "idle keep-alive")
}

// TestShutdownLetsAnswersFinish: when the context ends, an answer in
// progress finishes within the grace, and Serve returns nil.
func TestShutdownLetsAnswersFinish(t *testing.T) {
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	addrs, done := make(chan string, 1), make(chan error, 1)
	s := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		fmt.Fprint(w, "finished")
	}), Options{Name: "test", ShutdownGrace: 5 * time.Second})
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0", func(a string) { addrs <- a }) }()
	addr := <-addrs
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	if b := <-got; b != "finished" {
		t.Fatalf("answer in progress: %q", b)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// A listener that cannot be opened is an error naming the server.
	err := New(http.NotFoundHandler(), Options{Name: "test"}).ListenAndServe(context.Background(), "127.0.0.1:notaport", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "test: listen on") {
		t.Fatalf("bad address: %v", err)
	}
}
