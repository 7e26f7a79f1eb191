package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// TestServeRunsTheIntake: serve with IYS_INTAKE_ADDR answers the intake,
// stores what it is sent, answers permission checks with its settings
// (IYS_PERMISSIONS_ALLOW_PENDING allows the ONAY just stored), and stops
// cleanly on its signal.
func TestServeRunsTheIntake(t *testing.T) {
	environ := sandboxEnv(t, sandbox.Options{})
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--skip-verify"); r.code != 0 {
		t.Fatalf("install: exit %d, %s", r.code, r.stderr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const token = "a-long-random-token-for-the-test"
	sum := sha256.Sum256([]byte(token))
	environ["IYS_INTAKE_ADDR"] = addr
	environ["IYS_INTAKE_TOKENS"] = "crm:" + hex.EncodeToString(sum[:]) + ":600001"
	environ["IYS_PERMISSIONS_ALLOW_PENDING"] = "true"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		err := run(ctx, []string{"serve"}, &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }, now: time.Now})
		done <- exitCode(err, &errb)
	}()

	body := `[{"recipient":"905331234562","channel":"sms","status":"ONAY","consentDate":"2025-05-15T14:23:00+03:00","platform":"web"},
	          {"recipient":"905331234563","channel":"sms","status":"maybe","consentDate":"2025-05-15 14:23:00","platform":"web"}]`
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/connectors/600001/consents", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the intake did not answer: %v\n%s", err, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Accepted, Rejected int
		Items              []struct{ Verdict, Field string }
	}
	if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != 200 || got.Accepted != 1 || got.Rejected != 1 ||
		got.Items[1].Field != "permission" {
		t.Fatalf("%d %s (%v)", resp.StatusCode, b, err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/connectors/600001/permissions?type=MESAJ&recipient=905331234562", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var perm struct {
		Status               string
		Allowed, SyncedToIys bool
	}
	if err := json.Unmarshal(b, &perm); err != nil || resp.StatusCode != 200 || perm.Status != "ONAY" || !perm.Allowed || perm.SyncedToIys {
		t.Fatalf("permission of the pending ONAY with IYS_PERMISSIONS_ALLOW_PENDING=true: %d %s (%v)", resp.StatusCode, b, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not stop")
	}
	if logs := errb.String(); !strings.Contains(logs, "intake listening") || strings.Contains(logs, "905331234562") || strings.Contains(logs, token) {
		t.Errorf("logs: %s", logs)
	}
	if r := runCmd(t, environ, "status", "--json"); !strings.Contains(r.stdout, `"pending":1`) {
		t.Errorf("status after the intake: %s", r.stdout)
	}
}

// TestServeIntakeNeedsTokens: an intake address without tokens stops serve
// before any work, naming the variable.
func TestServeIntakeNeedsTokens(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	environ["IYS_INTAKE_ADDR"] = "127.0.0.1:0"
	r := runCmd(t, environ, "serve")
	if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_INTAKE_TOKENS") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// TestServeIntakeTLSNeedsBoth: a certificate without its key stops serve
// before any work, naming both variables.
func TestServeIntakeTLSNeedsBoth(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	environ["IYS_INTAKE_ADDR"] = "127.0.0.1:0"
	environ["IYS_INTAKE_TOKENS"] = "crm:" + strings.Repeat("ab", 32)
	environ["IYS_INTAKE_TLS_CERT"] = "/nonexistent/tls.crt"
	r := runCmd(t, environ, "serve")
	if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_INTAKE_TLS_KEY") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}
