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

	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
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
	t.Parallel()
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
	admin := sandboxtest.NewAdmin(t, base)
	admin.Citizen(sandboxtest.Change{IYSCode: "700001", BrandCode: "600001", Recipient: "+905331234562",
		RecipientType: "BIREYSEL", Type: "MESAJ", Status: "RET", Source: "IYS_MOBIL"})
	if recs := admin.Consents("600001"); len(recs) != 1 || recs[0].Status != "RET" || recs[0].Source != "IYS_MOBIL" ||
		recs[0].Recipient != "+905331234562" || recs[0].TransactionID == "" {
		t.Fatalf("consents: %+v", recs)
	}
	// The İYS API answers too: a token for the one user it accepts.
	b, _ := json.Marshal(map[string]string{"username": "sandbox", "password": "sandbox", "grant_type": "password"})
	resp, err := http.Post(base+"/oauth2/token", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("access_token")) {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	if st := admin.Stats(); st.Requests[sandboxtest.RouteToken] != 1 {
		t.Fatalf("stats: %+v", st)
	}
	admin.Reset()
	if recs := admin.Consents(""); len(recs) != 0 {
		t.Fatalf("after reset: %+v", recs)
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
