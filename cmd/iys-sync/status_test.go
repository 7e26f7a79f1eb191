package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func statusAt(t *testing.T, now time.Time, environ map[string]string) connectorStatus {
	t.Helper()
	r := runCmdAt(t, func() time.Time { return now }, environ, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Connectors) != 1 {
		t.Fatalf("status --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return st.Connectors[0]
}

// The 3-business-day rule seen from the pending records, on a clock set to
// Wednesday 14 May 2025, 12:00 in Istanbul; the schedule's next run is
// Thursday 01:00.
func TestStatusDeadline(t *testing.T) {
	t.Parallel()
	environ, _ := installed(t)
	f := writeFile(t, "d.txt", strings.Join([]string{
		"905331234561; SMS; ONAY; 08.05.2025 10:00:00", // Thursday: deadline Tuesday 13th, too old
		"905331234562; SMS; ONAY; 09.05.2025 10:00:00", // Friday: deadline Wednesday 14th, at risk by Thursday 01:00
		"905331234563; SMS; ONAY; 12.05.2025 10:00:00", // Monday: deadline Thursday 15th
		"905331234564; HS_2015; ONAY; 01.05.2015 00:00:00",
	}, "\n")+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	now := time.Date(2025, 5, 14, 12, 0, 0, 0, consent.Istanbul)
	d := statusAt(t, now, environ).Deadline
	next, err := time.Parse(time.RFC3339, d.NextRunAt)
	if err != nil || d.TooOld != 1 || d.AtRisk != 1 || !next.Equal(time.Date(2025, 5, 14, 22, 0, 0, 0, time.UTC)) {
		t.Fatalf("deadline %+v, want 1 too old, 1 at risk, next run 2025-05-15 01:00 Istanbul", d)
	}
	r := runCmdAt(t, func() time.Time { return now }, environ, "status")
	if !strings.Contains(r.stdout, "1 pending records will be over İYS's 3-business-day limit") ||
		!strings.Contains(r.stdout, "run iys-sync --run-now") {
		t.Errorf("status text lacks the warning:\n%s", r.stdout)
	}
	// Paused, a run would skip it: the advice is to resume first.
	if r := runCmd(t, environ, "pause", "--brand-code", "B1"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = runCmdAt(t, func() time.Time { return now }, environ, "status")
	if !strings.Contains(r.stdout, "the connector is paused: iys-sync resume --brand-code B1, then iys-sync --run-now") {
		t.Errorf("a paused connector's warning does not say to resume it:\n%s", r.stdout)
	}
}

// The pull watchdog: never pulled, the lag counts from installation.
func TestStatusPullWatchdog(t *testing.T) {
	t.Parallel()
	environ, _ := installed(t)
	now := time.Now()
	if p := statusAt(t, now, environ).Pull; p == nil || p.Warning != "" || p.LastPulledAt != "" {
		t.Fatalf("fresh connector: pull %+v", p)
	}
	if p := statusAt(t, now.Add(6*24*time.Hour), environ).Pull; !strings.Contains(p.Warning, "over 5 days") {
		t.Fatalf("6 days on: pull %+v, want the warning", p)
	}
	p := statusAt(t, now.Add(8*24*time.Hour), environ).Pull
	if !strings.Contains(p.Warning, "lost") || p.LagSeconds < 8*24*3600-60 {
		t.Fatalf("8 days on: pull %+v, want changes lost", p)
	}
}
