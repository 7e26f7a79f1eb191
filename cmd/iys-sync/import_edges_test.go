package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runCmdCtx runs the command line in-process under ctx, as main does under
// the context its signals cancel.
func runCmdCtx(ctx context.Context, environ map[string]string, args ...string) result {
	var out, errb bytes.Buffer
	err := run(ctx, args, &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }, now: time.Now})
	code := exitCode(err, &errb)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// devZero names /dev/zero with an upload file's name: a file of one endless
// line without a line end.
func devZero(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "zero.txt")
	if err := os.Symlink("/dev/zero", p); err != nil {
		t.Fatal(err)
	}
	return p
}

func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImportStopsWhenInterrupted: the context of SIGTERM/SIGINT ends while
// the import reads an endless file. The command stops, that file is rolled
// back, the file before it stays imported, the one after it is not read,
// and the message says so.
func TestImportStopsWhenInterrupted(t *testing.T) {
	environ, db := installed(t)
	now := uploadTime(time.Now().Add(-time.Hour))
	first := writeFile(t, "first.txt", "905331234562; SMS; ONAY; "+now+"\n")
	zero := devZero(t)
	last := writeFile(t, "last.txt", "905331234563; SMS; ONAY; "+now+"\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // once the first file is stored, the import is in the endless one
		for ctx.Err() == nil {
			var n int
			if err := db.QueryRow("SELECT count(*) FROM imports").Scan(&n); err == nil && n == 1 {
				time.Sleep(300 * time.Millisecond) // well into /dev/zero
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	done := make(chan result, 1)
	go func() {
		done <- runCmdCtx(ctx, environ, "import", "--brand-code", "B1", "--channel", "sms", first, zero, last)
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the import went on reading /dev/zero after its context ended")
	}
	if r.code != exitFatal {
		t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
	}
	for _, w := range []string{"interrupted while importing " + zero, "rolled back, nothing of it is stored",
		"the 1 file before it stay imported", "1 file after it not read", "at line 1"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if imports, consents := countRows(t, db, "imports"), countRows(t, db, "consents"); imports != 1 || consents != 1 {
		t.Errorf("%d imports and %d consents, want the first file's 1 and 1", imports, consents)
	}
}

// TestImportOfDevZeroStopsOnSIGTERM runs the real binary on /dev/zero: its
// memory stays flat however far it reads (a line is never held), and
// SIGTERM ends it with exit 1 and a message naming the line.
func TestImportOfDevZeroStopsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "import", "--dry-run", "--channel", "sms", devZero(t))
	cmd.Env = append(withoutIYS(os.Environ()), runMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // it may be gone already
	})
	proc := func(file, key string) int64 {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), file))
		if err != nil {
			t.Fatalf("read the child's %s: %v", file, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, key); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				return n
			}
		}
		t.Fatalf("no %s in the child's %s", key, file)
		return 0
	}
	const far = 512 << 20
	deadline := time.Now().Add(time.Minute)
	for proc("io", "rchar:") < far {
		if time.Now().After(deadline) {
			t.Fatalf("the child read only %d bytes in a minute; stderr %s", proc("io", "rchar:"), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hwm := proc("status", "VmHWM:"); hwm > 100<<10 {
		t.Errorf("peak RSS %d kB after reading %d MB of one line: the line is held", hwm, far>>20)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatal("SIGTERM did not stop the import")
	}
	if code := cmd.ProcessState.ExitCode(); code != exitFatal {
		t.Fatalf("exit %d (%v), want 1; stderr %s", code, cmd.ProcessState, stderr.String())
	}
	if s := stderr.String(); !strings.Contains(s, "interrupted while importing") || !strings.Contains(s, "zero.txt at line 1") {
		t.Errorf("stderr: %s", s)
	}
}

// TestErrorsOutFailuresAreErrors: --errors-out is opened before anything is
// imported, a write to it that fails stops the import (the file is rolled
// back) with exit 1, and it may not be one of the files to import.
func TestErrorsOutFailuresAreErrors(t *testing.T) {
	t.Parallel()
	environ, db := installed(t)
	now := uploadTime(time.Now().Add(-time.Hour))
	content := "905331234562; SMS; ONAY; " + now + "\n905331234563; SMS; Onay; " + now + "\n905331234564; SMS; ONAY; " + now + "\n"
	file := writeFile(t, "sms.txt", content)

	// A write that fails: the disk is full.
	r := runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", "--errors-out", "/dev/full", file)
	if r.code != exitFatal || !strings.Contains(r.stderr, "write --errors-out /dev/full") || !strings.Contains(r.stderr, "rolled back") {
		t.Errorf("/dev/full: exit %d, stderr %s", r.code, r.stderr)
	}
	// The same with --dry-run.
	r = runCmd(t, environ, "import", "--dry-run", "--channel", "sms", "--errors-out", "/dev/full", file)
	if r.code != exitFatal || !strings.Contains(r.stderr, "write --errors-out /dev/full") {
		t.Errorf("/dev/full, dry run: exit %d, stderr %s", r.code, r.stderr)
	}
	// A path that cannot be created: refused before anything is imported.
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "errors.txt")
	r = runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", "--errors-out", missing, file)
	if r.code != exitFatal || !strings.Contains(r.stderr, "--errors-out") {
		t.Errorf("missing directory: exit %d, stderr %s", r.code, r.stderr)
	}
	if imports, consents := countRows(t, db, "imports"), countRows(t, db, "consents"); imports != 0 || consents != 0 {
		t.Fatalf("%d imports and %d consents after failed reports, want none", imports, consents)
	}
	// One of the files to import: it would be truncated.
	r = runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", "--errors-out", file, file)
	if b, _ := os.ReadFile(file); r.code != exitUsage || string(b) != content {
		t.Errorf("--errors-out the input: exit %d, stderr %s; the file holds %q", r.code, r.stderr, b)
	}
	// A good path: the import and the report.
	good := filepath.Join(t.TempDir(), "errors.txt")
	r = runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", "--errors-out", good, file)
	if b, err := os.ReadFile(good); r.code != exitRejected || err != nil || string(b) != file+":2: permission: must be ONAY or RET, in capitals\n" {
		t.Errorf("good path: exit %d, stderr %s; report %q (%v)", r.code, r.stderr, b, err)
	}
	if consents := countRows(t, db, "consents"); consents != 2 {
		t.Errorf("%d consents, want 2", consents)
	}
}

// TestImportAppliesSourceRulesAndFlagsPhones: HS_2015 with another date and
// HS_KARAR with ONAY are rejected at import, naming the field to fix; HS_2015
// carries no 3-business-day warning; 10 digits starting with 5 are kept and
// counted, in the JSON and the text summary.
func TestImportAppliesSourceRulesAndFlagsPhones(t *testing.T) {
	t.Parallel()
	environ, db := installed(t)
	now := uploadTime(time.Now().Add(-time.Hour))
	file := writeFile(t, "sms.txt", strings.Join([]string{
		"905331234501; HS_2015; ONAY; 01.05.2015 00:00:00; a",
		"905331234502; HS_2015; ONAY; " + now,
		"905331234503; HS_KARAR; ONAY; " + now,
		"905331234504; hs_karar; RET; " + now,
		"5331234505; SMS; ONAY; " + now,
		"905331234506; web; ONAY; 01.05.2015 00:00:00",
	}, "\n")+"\n")
	r := runCmd(t, environ, "import", "--json", "--brand-code", "B1", "--channel", "sms", file)
	if r.code != exitRejected {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	f := decodeImport(t, r).Files[0]
	if f.Valid != 4 || f.Rejected != 2 || len(f.Errors) != 2 ||
		f.Errors[0].Line != 2 || f.Errors[0].Field != "timestamp" || !strings.Contains(f.Errors[0].Message, "HS_2015") ||
		f.Errors[1].Line != 3 || f.Errors[1].Field != "platform" || !strings.Contains(f.Errors[1].Message, "RET only") {
		t.Errorf("summary %+v", f)
	}
	if w := f.Warnings; w.OlderThan3BusinessDays != 1 || w.MaybeMissingCountryCode != 1 {
		t.Errorf("warnings %+v, want 1 older than 3 business days (not HS_2015's) and 1 maybe missing the country code", w)
	}
	var raw struct {
		Files []struct {
			Warnings map[string]int `json:"warnings"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || raw.Files[0].Warnings["maybeMissingCountryCode"] != 1 {
		t.Errorf("JSON warnings %v (%v)", raw.Files, err)
	}
	var rcpt string
	if err := db.QueryRow("SELECT recipient FROM consents WHERE external_id = '' AND recipient LIKE '+5%'").Scan(&rcpt); err != nil || rcpt != "+5331234505" {
		t.Errorf("stored %q (%v), want +5331234505 as given", rcpt, err)
	}
	if n := countRows(t, db, "consents"); n != 4 {
		t.Errorf("%d consents, want the 4 valid lines", n)
	}
	r = runCmd(t, nil, "import", "--dry-run", "--channel", "sms", file)
	if !strings.Contains(r.stdout, "1 older than 3 business days") || !strings.Contains(r.stdout, "1 maybe missing the country code") {
		t.Errorf("text summary: %s", r.stdout)
	}
}

// TestCodesAreChecked: brand and İYS codes that are not codes are refused
// by every command that takes one, with the shape of a code, and echoed
// quoted, so that no escape sequence reaches the terminal.
func TestCodesAreChecked(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"..", "60/01", "600001\n", "\x1b[31m600001", "600 001", "60%2F01", strings.Repeat("9", 21), "şirket"} {
		for _, args := range [][]string{
			{"install", "--brand-code", bad, "--iys-code", "700001"},
			{"install", "--brand-code", "600001", "--iys-code", bad},
			{"import", "--brand-code", bad, "--channel", "sms", "x.txt"},
			{"report", "--brand-code", bad},
			{"pull", "--brand-code", bad},
			{"reconcile", "--brand-code", bad, "--date", "2025-05-15"},
		} {
			r := runCmd(t, map[string]string{"IYS_DATABASE_URL": "postgres://127.0.0.1:1/none"}, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "1 to 20 ASCII letters or digits") || strings.ContainsAny(r.stderr, "\x1b\r") ||
				strings.Count(r.stderr, "\n") != 2 {
				t.Errorf("%q: exit %d, stderr %q", args, r.code, r.stderr)
			}
		}
	}
}

// TestReportNeutralisesFormulas: a text a brand or İYS wrote that starts
// like a formula is prefixed with ' in the CSV; recipients (E.164, ours)
// stay as they are; JSON is unchanged.
func TestReportNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	environ, db := installed(t)
	now := uploadTime(time.Now().Add(-time.Hour))
	ids := []string{"=HYPERLINK(\"http://evil.example\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "plain-1", "ok=1"}
	var lines []string
	for i, id := range ids {
		lines = append(lines, "9053312345"+strconv.Itoa(10+i)+"; SMS; ONAY; "+now+"; "+id)
	}
	if r := runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", writeFile(t, "sms.txt", strings.Join(lines, "\n"))); r.code != 0 {
		t.Fatalf("import: exit %d, %s", r.code, r.stderr)
	}
	if _, err := db.Exec(`UPDATE consents SET iys_code = '-H1', iys_message = E'\t=1+1' WHERE external_id = 'plain-1'`); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, environ, "report", "--brand-code", "B1")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.code != 0 || err != nil || len(rows) != len(ids)+1 {
		t.Fatalf("report: exit %d, %v, %d rows: %s %s", r.code, err, len(rows), r.stdout, r.stderr)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	want := map[string]string{ids[0]: "'" + ids[0], ids[1]: "'" + ids[1], ids[2]: "'" + ids[2], ids[3]: "'" + ids[3], "plain-1": "plain-1", "ok=1": "ok=1"}
	for _, row := range rows[1:] {
		ext := row[col["externalId"]]
		orig := strings.TrimPrefix(ext, "'")
		if want[orig] != ext {
			t.Errorf("externalId cell %q, want %q", ext, want[orig])
		}
		if rc := row[col["recipient"]]; !strings.HasPrefix(rc, "+90533") {
			t.Errorf("recipient cell %q: want E.164 as stored", rc)
		}
		if orig == "plain-1" && (row[col["iysCode"]] != "'-H1" || row[col["iysMessage"]] != "'\t=1+1") {
			t.Errorf("İYS's cells %q %q", row[col["iysCode"]], row[col["iysMessage"]])
		}
	}
	r = runCmd(t, environ, "report", "--brand-code", "B1", "--format", "json")
	var recs []reportRow
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != len(ids) {
		t.Fatalf("json: %v %s", err, r.stdout)
	}
	for _, rec := range recs {
		if _, ok := want[rec.ExternalID]; !ok {
			t.Errorf("JSON externalId %q changed", rec.ExternalID)
		}
	}
}

// TestImportOfAQuietPipeStopsWhenInterrupted: a named pipe whose writer
// sends nothing blocks the read itself; the interrupt still ends it.
func TestImportOfAQuietPipeStopsWhenInterrupted(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe.txt")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	writer := make(chan *os.File, 1)
	go func() { // opening a pipe waits for its reader: the import
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			w = nil
		}
		writer <- w
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- runCmdCtx(ctx, nil, "import", "--dry-run", "--channel", "sms", fifo) }()
	w := <-writer
	if w == nil {
		t.Fatal("could not open the pipe's writing end")
	}
	defer w.Close()
	if _, err := w.WriteString("905331234562; SMS; ONAY; " + uploadTime(time.Now()) + "\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the import now waits in a read
	cancel()
	select {
	case r := <-done:
		if r.code != exitFatal || !strings.Contains(r.stderr, "interrupted while importing "+fifo) || !strings.Contains(r.stderr, "at line 2") {
			t.Errorf("exit %d, stderr %s", r.code, r.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("the import still waits on the pipe after its context ended")
	}
}
