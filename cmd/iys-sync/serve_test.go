package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// startServe runs serve in-process until the returned stop is called;
// stop returns its exit status and its logs.
func startServe(t *testing.T, environ map[string]string) (logs *lockedBuffer, stop func() int) {
	t.Helper()
	return startServeAt(t, time.Now, environ)
}

// startServeAt is startServe on the clock now.
func startServeAt(t *testing.T, now func() time.Time, environ map[string]string) (logs *lockedBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	logs = &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		err := run(ctx, []string{"serve"}, &env{stdout: &out, stderr: logs, getenv: func(k string) string { return environ[k] }, now: now})
		done <- exitCode(err, logs)
	}()
	return logs, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(time.Minute):
			t.Fatal("serve did not stop")
			return -1
		}
	}
}

// waitLog waits until serve logs msg.
func waitLog(t *testing.T, logs *lockedBuffer, msg string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), msg); {
		if time.Now().After(deadline) {
			t.Fatalf("serve never logged %q:\n%s", msg, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeCatchesUpAfterARestart: serve started after the schedule fired,
// within the window, runs the night it missed at once, saying why; started
// again, it does not run the night a second time.
func TestServeCatchesUpAfterARestart(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	tick := time.Now().In(istanbulZone(t)).Add(-3 * time.Minute)
	environ["IYS_SCHEDULE"] = fmt.Sprintf("%d %d * * *", tick.Minute(), tick.Hour())
	environ["IYS_WINDOW"] = "1h"
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Installed yesterday: its first sync was an earlier night.
	if _, err := db.Exec(`UPDATE connectors SET first_sync_at = now() - interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	at := uploadTime(time.Now().Add(-time.Hour))
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+at+"\n905331234563; SMS; RET; "+at+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}

	logs, stop := startServe(t, environ)
	waitLog(t, logs, "sync run finished")
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, logs.String())
	}
	if !strings.Contains(logs.String(), "catching up on the night") || !strings.Contains(logs.String(), "no run since the schedule fired") {
		t.Fatalf("serve does not say why it runs:\n%s", logs.String())
	}
	var runs, synced, rejected int
	var trigger, status string
	if err := db.QueryRow(`SELECT count(*), min(trigger), min(status), (SELECT count(*) FROM consents WHERE state = 'synced'),
		(SELECT count(*) FROM consents WHERE state = 'rejected') FROM runs`).Scan(&runs, &trigger, &status, &synced, &rejected); err != nil {
		t.Fatal(err)
	}
	if runs != 1 || trigger != "schedule" || status != "completed" || synced != 1 || rejected != 1 {
		t.Fatalf("%d runs (%s, %s), %d synced, %d rejected: want one scheduled run that completed both records",
			runs, trigger, status, synced, rejected)
	}

	logs, stop = startServe(t, environ)
	waitLog(t, logs, "nothing to catch up on")
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, logs.String())
	}
	if err := db.QueryRow(`SELECT count(*) FROM runs`).Scan(&runs); err != nil || runs != 1 || strings.Contains(logs.String(), "sync run finished") {
		t.Fatalf("started again, serve ran the completed night again (%d runs, %v):\n%s", runs, err, logs.String())
	}
}

func istanbulZone(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
