package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/intake"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/store"
)

// A command takes as flags only the settings it reads; the environment
// still gives every setting to every command, validated, and a secret's
// flag is refused by name everywhere.
func TestCommandsTakeTheirSettingsOnly(t *testing.T) {
	r := runCmd(t, nil, "report", "--brand-code", "600001", "--batch-size", "5")
	if r.code != exitUsage || !strings.Contains(r.stderr, "flag provided but not defined: -batch-size") {
		t.Errorf("report --batch-size: exit %d %s", r.code, r.stderr)
	}
	r = runCmd(t, nil, "report", "--brand-code", "600001", "--password", "Unread-S3cret")
	if r.code != exitUsage || !strings.Contains(r.stderr, "IYS_PASSWORD") || strings.Contains(r.stderr, "Unread-S3cret") {
		t.Errorf("report --password: exit %d %s", r.code, r.stderr)
	}
	// IYS_BATCH_SIZE is ignored by report, which fails for want of its
	// database only; a bad value is refused all the same.
	r = runCmd(t, map[string]string{"IYS_BATCH_SIZE": "5"}, "report", "--brand-code", "600001")
	if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_DATABASE_URL: is required") {
		t.Errorf("report with IYS_BATCH_SIZE: exit %d %s", r.code, r.stderr)
	}
	r = runCmd(t, map[string]string{"IYS_BATCH_SIZE": "0"}, "report", "--brand-code", "600001")
	if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_BATCH_SIZE") {
		t.Errorf("report with a bad IYS_BATCH_SIZE: exit %d %s", r.code, r.stderr)
	}
	// --run-now -h is the run's help, not the list of commands.
	r = runCmd(t, nil, "--run-now", "-h")
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "-max-duration") || !strings.Contains(r.stderr, "env IYS_WINDOW, default 6h") {
		t.Errorf("--run-now -h: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r = runCmd(t, nil, "-h"); r.code != 0 || !strings.Contains(r.stdout, "Commands:") {
		t.Errorf("-h: exit %d\n%s", r.code, r.stdout)
	}
	// The help shows the command's own flags first, then its settings.
	r = runCmd(t, nil, "report", "-h")
	own, settings := strings.Index(r.stderr, "  -state"), strings.Index(r.stderr, "  -database-url")
	if heading := strings.Index(r.stderr, settingsHeading); own < 0 || heading < own || settings < heading {
		t.Errorf("report -h:\n%s", r.stderr)
	}
}

// Every log line of a run, and the intake's, names the brand by the key
// brand_code, as the metrics' labels do.
func TestLogsNameTheBrandCode(t *testing.T) {
	environ := sandboxEnv(t, sandbox.Options{})
	environ["IYS_LOG_LEVEL"] = "debug"
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--skip-verify"); r.code != 0 {
		t.Fatalf("install: exit %d %s", r.code, r.stderr)
	}
	file := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", file); r.code != 0 {
		t.Fatalf("import: exit %d %s", r.code, r.stderr)
	}
	r := runCmd(t, environ, "--run-now")
	if r.code != 0 {
		t.Fatalf("--run-now: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	runLines := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("a log line that is not JSON: %q", line)
		}
		if _, ok := fields["brand"]; ok {
			t.Errorf("a log line with the key brand: %s", line)
		}
		if _, ok := fields["run_id"]; ok {
			runLines++
			if fields["brand_code"] != "600001" {
				t.Errorf("a run's log line without brand_code: %s", line)
			}
		}
	}
	if runLines == 0 {
		t.Fatalf("no log line of the run:\n%s", r.stderr)
	}

	core, logs := observer.New(zap.InfoLevel)
	h, err := intake.New(new(store.Store), []string{"crm:" + strings.Repeat("ab", 32)}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/connectors/600001/consents", nil))
	entries := logs.FilterMessage("intake request refused").All()
	if len(entries) != 1 || entries[0].ContextMap()["brand_code"] != "600001" {
		t.Fatalf("intake log: %+v", logs.All())
	}
}
