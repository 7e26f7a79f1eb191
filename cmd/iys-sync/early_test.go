package main

import (
	"strings"
	"testing"
	"time"
)

// A consent stamped ahead of the clock (the import takes up to 5 minutes)
// shows pending and not yet due.
func TestStatusNotYetDue(t *testing.T) {
	t.Parallel()
	environ, _ := installed(t)
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(75*time.Second))+"\n"+
		"905331234563; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	s := statusAt(t, time.Now(), environ)
	if s.Records.Pending != 2 || s.Records.NotYetDue != 1 {
		t.Fatalf("records %+v, want 2 pending, 1 not yet due", s.Records)
	}
	if s = statusAt(t, time.Now().Add(2*time.Minute), environ); s.Records.NotYetDue != 0 {
		t.Fatalf("2 minutes on: records %+v, want none not yet due", s.Records)
	}
	r := runCmd(t, environ, "status")
	if !strings.Contains(r.stdout, "B1: 1 pending records are not yet due") {
		t.Fatalf("status text lacks the line:\n%s", r.stdout)
	}
}
