package sandbox

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, Options{Addr: "127.0.0.1:0", Seed: 1}, func(addr string) { addrs <- addr })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("never ready")
	}
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("ready with %s, want the bound port", addr)
	}
	resp, err := http.Post("http://"+addr+"/oauth2/token", "application/json",
		strings.NewReader(`{"username":"sandbox","password":"sandbox","grant_type":"password"}`))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "access_token") {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop when the context ended")
	}
}

func TestListenAndServeBadAddr(t *testing.T) {
	err := ListenAndServe(context.Background(), Options{Addr: "127.0.0.1:notaport"}, nil)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("err = %v, want a listen error", err)
	}
}

func TestNewChecksOptions(t *testing.T) {
	for _, o := range []Options{
		{FailRate: 1.5},
		{FailRate: -0.1},
		{BulkRate: -1},
		{Latency: -time.Second},
		{TokenTTL: time.Millisecond},
		{LoginLimit: -1},
		{Rights: []RightRule{{Right: "admin"}}},
		{Rights: []RightRule{{Type: "SMS"}}},
		{Brands: []Brand{{BrandCode: "b"}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	s, err := New(Options{})
	if err != nil {
		t.Fatalf("New(zero): %v", err)
	}
	if s.Seed() == 0 || s.opts.Addr != DefaultAddr || s.opts.TokenTTL != DefaultTokenTTL || s.opts.RefreshTTL != DefaultRefreshTTL {
		t.Fatalf("defaults = %+v", s.opts)
	}
}
