package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/sandbox"
)

func TestRunNowExitCodesAndStatus(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	at := uploadTime(time.Now().Add(-time.Hour))
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+at+"\n905331234563; SMS; RET; "+at+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := runCmd(t, environ, "--run-now", "--brand-code", "600001")
	if r.code != 0 || !strings.Contains(r.stdout, "completed") {
		t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var st statusJSON
	r = runCmd(t, environ, "status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Connectors) != 1 {
		t.Fatalf("status --json: %v %s", err, r.stdout)
	}
	c := st.Connectors[0]
	if c.Records.Synced != 1 || c.Records.Rejected != 1 || c.Outcomes.Accepted != 1 || c.Outcomes.NoPriorRecord != 1 {
		t.Errorf("records %+v outcomes %+v", c.Records, c.Outcomes)
	}
	if c.LastRun == nil || c.LastRun.Status != "completed" || c.LastRun.Trigger != "run-now" || c.LastRun.Sent != 2 ||
		c.LastRun.Accepted != 1 || c.LastRun.Rejected != 1 || c.LastRun.FinishedAt == "" {
		t.Errorf("lastRun %+v", c.LastRun)
	}

	// A brand İYS refuses: the run fails, the records stay pending: exit 3.
	denied := sandboxEnv(t, sandbox.Options{DenyBrands: []string{"600001"}})
	if r := runCmd(t, denied, "install", "--brand-code", "600001", "--iys-code", "700001", "--skip-verify"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCmd(t, denied, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = runCmd(t, denied, "--run-now")
	if r.code != exitRejected || !strings.Contains(r.stdout+r.stderr, "İş Ortaklığı") {
		t.Fatalf("denied brand: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, denied, "status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Connectors[0].Records.Pending != 2 || st.Connectors[0].LastRun.Status != "failed" {
		t.Fatalf("after a refused run: %v %s", err, r.stdout)
	}
	if r := runCmd(t, environ, "--run-now", "--brand-code", "nope"); r.code != exitFatal {
		t.Fatalf("unknown brand: exit %d", r.code)
	}
}
