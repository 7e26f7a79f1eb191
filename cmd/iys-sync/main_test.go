package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" { // a test runs the real command: see kill_import_test.go
		main()
		return
	}
	pgtest.Main(m)
}

// result is what one in-process command printed and how it ended.
type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs the command line in-process with the given environment only.
func runCmd(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	return runCmdAt(t, time.Now, environ, args...)
}

// runCmdAt is runCmd with the clock of status's deadline and lag.
func runCmdAt(t *testing.T, now func() time.Time, environ map[string]string, args ...string) result {
	t.Helper()
	// A command's goroutines (and its several loggers) write to stderr at once, as to the process's.
	var out bytes.Buffer
	var errb lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, args, &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }, now: now})
	code := exitCode(err, &errb)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// uploadTime formats a moment as the upload files write it, in Türkiye time.
func uploadTime(t time.Time) string {
	loc, _ := time.LoadLocation("Europe/Istanbul")
	return t.In(loc).Format("02.01.2006 15:04:05")
}

func decodeImport(t *testing.T, r result) importSummary {
	t.Helper()
	var s importSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("import --json printed no JSON: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return s
}

func TestImportDryRunSamples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ channel, file string }{
		{"email", "email-sample.txt"}, {"sms", "sms-sample.txt"},
	} {
		path := filepath.Join("..", "..", "internal", "upload", "testdata", "samples", tc.file)
		r := runCmd(t, nil, "import", "--dry-run", "--json", "--channel", tc.channel, path)
		if r.code != 0 {
			t.Fatalf("%s: exit %d, stderr %s", tc.file, r.code, r.stderr)
		}
		s := decodeImport(t, r)
		f := s.Files[0]
		if s.Valid != 3 || s.Rejected != 0 || f.Lines != 3 || f.Imported != 0 || len(f.Errors) != 0 {
			t.Errorf("%s: summary %+v", tc.file, s)
		}
		// The samples are dated May 2025: İYS would refuse them as too old.
		if f.Warnings.OlderThan3BusinessDays != 3 {
			t.Errorf("%s: olderThan3BusinessDays = %d, want 3", tc.file, f.Warnings.OlderThan3BusinessDays)
		}
	}
}

func TestImportDryRunReportsEachBadLine(t *testing.T) {
	t.Parallel()
	now := uploadTime(time.Now().Add(-time.Hour))
	future := uploadTime(time.Now().Add(time.Hour))
	content := strings.Join([]string{
		"905331234562; SMS; ONAY; " + now + "; u1",
		"",
		"05331234562; SMS; ONAY; " + now,
		"905331234563; ; ONAY; " + now,
		"905331234564; SMS; Onay; " + now,
		"905331234565; SMS; ONAY; " + future,
		"905331234566; SMS; ONAY; 31.02.2025 10:00:00",
		"905331234567; SMS; ONAY",
		"905331234568; kiosk; RET; " + now,
		"905331234562; SMS; RET; " + uploadTime(time.Now().Add(-2*time.Hour)),
	}, "\n") + "\n"
	path := writeFile(t, "sms.csv", content)
	errorsOut := filepath.Join(t.TempDir(), "errors.txt")
	r := runCmd(t, nil, "import", "--dry-run", "--json", "--channel", "sms", "--errors-out", errorsOut, path)
	if r.code != exitRejected {
		t.Fatalf("exit %d, want 3; stderr %s", r.code, r.stderr)
	}
	s := decodeImport(t, r)
	f := s.Files[0]
	if f.Lines != 10 || f.Blank != 1 || f.Valid != 3 || f.Rejected != 6 {
		t.Fatalf("counts %+v", f)
	}
	wantFields := map[int]string{3: "phone", 4: "platform", 5: "permission", 6: "timestamp", 7: "timestamp", 8: "line"}
	for _, e := range f.Errors {
		if wantFields[e.Line] != e.Field {
			t.Errorf("line %d: field %q, want %q", e.Line, e.Field, wantFields[e.Line])
		}
		delete(wantFields, e.Line)
	}
	if len(wantFields) > 0 {
		t.Errorf("lines not reported: %v", wantFields)
	}
	if f.Warnings.UnknownPlatform != 1 || f.Warnings.Superseded != 1 {
		t.Errorf("warnings %+v, want 1 unknown platform and 1 superseded (line 10 is older than line 1)", f.Warnings)
	}
	if !strings.Contains(r.stderr, path+":3: phone: ") {
		t.Errorf("stderr lacks FILE:LINE: FIELD: %s", r.stderr)
	}
	b, err := os.ReadFile(errorsOut)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "\n"); got != 6 {
		t.Errorf("--errors-out has %d lines, want 6:\n%s", got, b)
	}
}

func TestImportExitCodes(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "ok.txt", "user@example.com; web; ONAY; "+uploadTime(time.Now())+"\n")
	if r := runCmd(t, nil, "import", "--dry-run", "--channel", "email", good); r.code != 0 {
		t.Errorf("a good file: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := runCmd(t, nil, "import", "--dry-run", "--channel", "email", writeFile(t, "x.pdf", "")); r.code != exitFatal {
		t.Errorf("a .pdf file: exit %d, want 1", r.code)
	}
	// The other files of the command are still processed.
	r := runCmd(t, nil, "import", "--dry-run", "--json", "--channel", "email", filepath.Join(t.TempDir(), "missing.txt"), good)
	if r.code != exitFatal || decodeImport(t, r).Valid != 1 {
		t.Errorf("a missing file and a good one: exit %d, stdout %s", r.code, r.stdout)
	}
	for _, args := range [][]string{
		{"import", "--dry-run", good},                                          // no channel
		{"import", "--dry-run", "--channel", "fax", good},                      // bad channel
		{"import", "--dry-run", "--channel", "email", "--type", "MESAJ", good}, // --type on email
		{"import", "--dry-run", "--channel", "sms"},                            // no file
		{"import", "--channel", "sms", good},                                   // no brand code
		{"frobnicate"},
	} {
		if r := runCmd(t, nil, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want 2; stderr %s", args, r.code, r.stderr)
		}
	}
	if r := runCmd(t, nil, "import", "--channel", "sms", "--brand-code", "1", good); r.code != exitFatal || !strings.Contains(r.stderr, "IYS_DATABASE_URL") {
		t.Errorf("no database: exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestConfigErrorsNameTheVariableAndHideSecrets(t *testing.T) {
	t.Parallel()
	r := runCmd(t, map[string]string{"IYS_BATCH_SIZE": "5000"}, "status")
	if r.code != exitFatal || !strings.Contains(r.stderr, "IYS_BATCH_SIZE") {
		t.Errorf("exit %d, stderr %s", r.code, r.stderr)
	}
	r = runCmd(t, map[string]string{"IYS_DATABASE_URL": "postgres://iys:hunter2secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, "status")
	if r.code != exitFatal || strings.Contains(r.stderr+r.stdout, "hunter2secret") {
		t.Errorf("exit %d; the password leaked or no error: %s", r.code, r.stderr)
	}
}

// A command that takes no operands refuses one, before any work: `prune
// dry-run` (the dashes forgotten) must not prune for real.
func TestCommandsRefuseOperands(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"prune", "dry-run"}, {"forget", "x"}, {"history", "x"}, {"verify", "x"},
		{"status", "x"}, {"report", "x"}, {"connectors", "x"}, {"demo", "x"}, {"redrive", "x"}, {"runs", "x"}} {
		r := runCmd(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "takes no operands") {
			t.Errorf("%v: exit %d, %s; want a usage error naming the operand", args, r.code, r.stderr)
		}
	}
}
