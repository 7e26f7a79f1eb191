package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	gosync "sync"
	"testing"
	"time"
)

// lockedBuffer is written by the command while the test reads it.
type lockedBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The sandbox command on its own: it says where it listens, and each admin
// endpoint of docs/cli.md works.
func TestSandboxCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sandbox", "--addr", "127.0.0.1:0", "--seed", "3", "--brand", "700001:600001:Demo"},
			&env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: time.Now})
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		cancel()
		t.Fatalf("no 'listening on' line: %q %q", out.String(), errb.String())
	}
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, r)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	citizen := map[string]string{"iysCode": "700001", "brandCode": "600001", "recipient": "+905331234562",
		"recipientType": "BIREYSEL", "type": "MESAJ", "status": "RET", "source": "IYS_MOBIL"}
	if code, b := call("POST", "/_sandbox/citizen", citizen); code/100 != 2 {
		t.Fatalf("citizen: %d %s", code, b)
	}
	var recs []map[string]string
	code, b := call("GET", "/_sandbox/consents?brandCode=600001", nil)
	if err := json.Unmarshal(b, &recs); code != 200 || err != nil || len(recs) != 1 || recs[0]["status"] != "RET" ||
		recs[0]["source"] != "IYS_MOBIL" || recs[0]["recipient"] != "+905331234562" || recs[0]["transactionId"] == "" {
		t.Fatalf("consents: %d %s", code, b)
	}
	// The İYS API answers too: a token for the one user it accepts.
	code, b = call("POST", "/oauth2/token", map[string]string{"username": "sandbox", "password": "sandbox", "grant_type": "password"})
	if code != 200 || !bytes.Contains(b, []byte("access_token")) {
		t.Fatalf("token: %d %s", code, b)
	}
	var stats map[string]any
	if code, b = call("GET", "/_sandbox/stats", nil); code != 200 || json.Unmarshal(b, &stats) != nil || stats["requests"] == nil {
		t.Fatalf("stats: %d %s", code, b)
	}
	if code, b = call("POST", "/_sandbox/reset", nil); code/100 != 2 {
		t.Fatalf("reset: %d %s", code, b)
	}
	if _, b = call("GET", "/_sandbox/consents", nil); string(bytes.TrimSpace(b)) != "[]" {
		t.Fatalf("after reset: %s", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sandbox ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox did not stop with its context")
	}
}
