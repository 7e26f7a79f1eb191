package main

import (
	"context"
	"regexp"
	"testing"
	"time"
)

// startSandboxCmd runs `iys-sync sandbox args...` in-process on a free
// loopback port until the test ends, and returns its URL.
func startSandboxCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"sandbox", "--addr", "127.0.0.1:0"}, args...),
			&env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: time.Now})
	}()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !stopped {
			t.Errorf("sandbox: %v", err)
		}
	})
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			stopped = true
			done <- err
			t.Fatalf("the sandbox ended: %v; %s", err, errb.String())
		default:
		}
	}
	t.Fatalf("no 'listening on' line: %q %q", out.String(), errb.String())
	return ""
}
