package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
)

// mustRun runs a command line that must exit 0.
func mustRun(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	r := runCmd(t, environ, args...)
	if r.code != 0 {
		t.Fatalf("%v: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func statusOf(t *testing.T, environ map[string]string) connectorStatus {
	t.Helper()
	var st statusJSON
	r := mustRun(t, environ, "status", "--json", "--brand-code", "600001")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Connectors) != 1 {
		t.Fatalf("status --json: %v %s", err, r.stdout)
	}
	return st.Connectors[0]
}

func runNowJSON(t *testing.T, environ map[string]string) (runSummaryJSON, result) {
	t.Helper()
	r := runCmd(t, environ, "--run-now", "--json")
	var sum runSummaryJSON
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--run-now --json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	return sum, r
}

// A rejected record redriven goes to İYS again in the next run, and this
// time İYS takes it; the redrive is recorded with its operator.
func TestRedriveSendsRejectedAgain(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	environ["IYS_OPERATOR"] = "ayse"
	admin := sandboxAdmin(t, environ)
	mustRun(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001")
	at := uploadTime(time.Now().Add(-time.Hour))
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+at+"\n905331234563; SMS; RET; "+at+"\n")
	mustRun(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f)
	mustRun(t, environ, "--run-now")
	if c := statusOf(t, environ); c.Records.Rejected != 1 || c.Outcomes.NoPriorRecord != 1 {
		t.Fatalf("the RET of a recipient unknown to İYS: %+v %+v", c.Records, c.Outcomes)
	}

	// The citizen's earlier consent reaches İYS by another way: the RET now has a prior record.
	earlier := sandboxRecord("+905331234563", "ONAY", "HS_WEB")
	earlier.ConsentDate = time.Now().Add(-3 * time.Hour).In(consent.Istanbul).Format("2006-01-02 15:04:05")
	admin.PutConsent(earlier)

	var out redriveJSON
	r := mustRun(t, environ, "redrive", "--brand-code", "600001", "--state", "rejected", "--dry-run", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Matched != 1 || out.Requeued != 0 || out.ByOutcome["no_prior_record"] != 1 {
		t.Fatalf("--dry-run: %v %s", err, r.stdout)
	}
	if c := statusOf(t, environ); c.Records.Rejected != 1 {
		t.Fatalf("--dry-run changed records: %+v", c.Records)
	}
	r = mustRun(t, environ, "redrive", "--brand-code", "600001", "--dry-run")
	if !strings.Contains(r.stdout, "1 record would go back to pending") || !strings.Contains(r.stdout, "no_prior_record  1") {
		t.Errorf("--dry-run's text: %q", r.stdout)
	}
	if r := runCmd(t, environ, "redrive", "--brand-code", "600001", "--state", "failed", "--outcome", "too_old"); r.code != exitUsage {
		t.Errorf("--outcome with --state failed: exit %d", r.code)
	}
	if r := runCmd(t, environ, "redrive", "--brand-code", "600001", "--outcome", "accepted"); r.code != exitUsage {
		t.Errorf("--outcome accepted: exit %d %s", r.code, r.stderr)
	}
	r = mustRun(t, environ, "redrive", "--brand-code", "600001", "--outcome", "no_prior_record,too_old",
		"--since", time.Now().In(consent.Istanbul).Format(time.DateOnly), "--json")
	out = redriveJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.BrandCode != "600001" || out.Matched != 1 || out.Requeued != 1 ||
		len(out.ByOutcome) != 1 || out.ByOutcome["no_prior_record"] != 1 {
		t.Fatalf("redrive --json: %v %s", err, r.stdout)
	}
	if c := statusOf(t, environ); c.Records.Pending != 1 || c.Records.Rejected != 0 {
		t.Fatalf("after the redrive: %+v", c.Records)
	}

	before := admin.Stats().Requests[sandboxtest.RouteSubmitBulk]
	sum, r := runNowJSON(t, environ)
	if r.code != 0 || sum.Connectors[0].Sent != 1 || sum.Connectors[0].Accepted != 1 {
		t.Fatalf("the run after the redrive: exit %d %s", r.code, r.stdout)
	}
	if got := admin.Stats().Requests[sandboxtest.RouteSubmitBulk]; got != before+1 {
		t.Errorf("bulk requests %d → %d: want the record sent again in one", before, got)
	}
	if held := admin.Held("600001")[sandboxtest.Key("+905331234563", "BIREYSEL", "MESAJ")]; held.Status != "RET" {
		t.Errorf("İYS holds %+v, want the RET sent again", held)
	}
	if c := statusOf(t, environ); c.Records.Synced != 2 {
		t.Errorf("after the run: %+v", c.Records)
	}

	st, err := store.Open(context.Background(), environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Connector(context.Background(), "600001")
	if err != nil {
		t.Fatal(err)
	}
	// Without IYS_OPERATOR, the login name; a redrive that matches nothing is recorded all the same.
	delete(environ, "IYS_OPERATOR")
	environ["USER"] = "mehmet"
	if r := mustRun(t, environ, "redrive", "--brand-code", "600001"); !strings.Contains(r.stdout, "0 records back to pending") {
		t.Errorf("a redrive of nothing: %q", r.stdout)
	}
	rd, err := st.Redrives(context.Background(), c.ID)
	if err != nil || len(rd) != 2 || rd[0].Operator != "ayse" || rd[0].Requeued != 1 || len(rd[0].Filter.Outcomes) != 2 || rd[0].Filter.Since.IsZero() ||
		rd[1].Operator != "mehmet" || rd[1].Requeued != 0 || len(rd[1].Filter.States) != 2 {
		t.Fatalf("redrives recorded: %+v %v (the dry runs are none)", rd, err)
	}
}

// A paused connector is skipped by runs, which say so, and takes imports
// meanwhile; resumed, the next run sends what waited.
func TestPauseKeepsConnectorOutOfRuns(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	admin := sandboxAdmin(t, environ)
	mustRun(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001")
	r := mustRun(t, environ, "pause", "--brand-code", "600001")
	if !strings.Contains(r.stdout, "paused") {
		t.Errorf("pause said %q", r.stdout)
	}
	if r := mustRun(t, environ, "connectors", "--json"); !strings.Contains(r.stdout, `"state":"paused"`) {
		t.Errorf("connectors --json: %s", r.stdout)
	}
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	mustRun(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f)

	sum, r := runNowJSON(t, environ)
	if r.code != 0 || len(sum.Connectors) != 1 || !sum.Connectors[0].Skipped || !sum.Connectors[0].Paused ||
		sum.Connectors[0].RunID != 0 || !strings.Contains(sum.Connectors[0].Error, "paused") {
		t.Fatalf("a run with the connector paused: exit %d %s", r.code, r.stdout)
	}
	if r := runCmd(t, environ, "--run-now"); r.code != 0 || !strings.Contains(r.stdout, "skipped (paused)") {
		t.Errorf("the text summary: exit %d %s", r.code, r.stdout)
	}
	if n := admin.Stats().Requests[sandboxtest.RouteSubmitBulk]; n != 0 {
		t.Fatalf("İYS got %d bulk requests from a paused connector", n)
	}
	if c := statusOf(t, environ); c.Records.Pending != 1 || c.LastRun != nil {
		t.Fatalf("while paused: %+v, last run %+v", c.Records, c.LastRun)
	}

	mustRun(t, environ, "resume", "--brand-code", "600001")
	if r := mustRun(t, environ, "connectors", "--json"); !strings.Contains(r.stdout, `"state":"active"`) {
		t.Errorf("connectors --json after resume: %s", r.stdout)
	}
	sum, r = runNowJSON(t, environ)
	if r.code != 0 || sum.Connectors[0].Skipped || sum.Connectors[0].Sent != 1 {
		t.Fatalf("the run after resume: exit %d %s", r.code, r.stdout)
	}
	if r := runCmd(t, environ, "pause", "--brand-code", "nope"); r.code != exitFatal {
		t.Errorf("pause of an unknown brand: exit %d", r.code)
	}
}

// A paused connector's source is still read by runs: its users wait as
// pending, and go to İYS once it is resumed.
func TestPausedConnectorStillReadsItsSource(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	admin := sandboxAdmin(t, environ)
	brandURL, _ := brandDB(t) // three users: 3 SMS consents, 1 email
	environ["IYS_SOURCE_DATABASE_URL"] = brandURL
	mustRun(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--channels", "MESAJ,EPOSTA",
		"--skip-verify", "--source-query", sourceQuery)
	mustRun(t, environ, "pause", "--brand-code", "600001")
	sum, r := runNowJSON(t, environ)
	if r.code != 0 || len(sum.Connectors) != 1 || !sum.Connectors[0].Paused || sum.Connectors[0].Error != "connector is paused (iys-sync resume --brand-code 600001 brings it back)" {
		t.Fatalf("a run with the connector paused: exit %d %s", r.code, r.stdout)
	}
	if c := statusOf(t, environ); c.Records.Pending != 4 {
		t.Fatalf("the paused connector's source was not read: %+v", c.Records)
	}
	if n := admin.Stats().Requests[sandboxtest.RouteSubmitBulk]; n != 0 {
		t.Fatalf("İYS got %d bulk requests from a paused connector", n)
	}
	mustRun(t, environ, "resume", "--brand-code", "600001")
	if sum, r := runNowJSON(t, environ); r.code != 0 || sum.Connectors[0].Sent != 4 {
		t.Fatalf("the run after resume: exit %d %s", r.code, r.stdout)
	}
}

// install --update adds a channel, asking İYS about it first; the import
// refused for the missing channel says how.
func TestInstallUpdateAddsChannel(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	admin := sandboxAdmin(t, environ)
	mustRun(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--channels", "EPOSTA")
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f)
	if r.code != exitFatal || !strings.Contains(r.stderr, "iys-sync install --update --brand-code 600001 --channels EPOSTA,MESAJ") {
		t.Fatalf("an SMS import into an email connector: exit %d %s", r.code, r.stderr)
	}
	// A plain install with other values is a conflict that names --update.
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--channels", "EPOSTA,MESAJ"); r.code != exitFatal ||
		!strings.Contains(r.stderr, "install --update") {
		t.Errorf("install with another channel: exit %d %s", r.code, r.stderr)
	}

	// İYS refuses the new channel: nothing changes.
	admin.AddRight(sandbox.RightRule{BrandCode: "600001", Type: consent.TypeMesaj, Right: sandbox.RightWrite, Granted: false})
	if r := runCmd(t, environ, "install", "--update", "--brand-code", "600001", "--channels", "EPOSTA,MESAJ"); r.code != exitFatal {
		t.Fatalf("--update to a channel İYS refuses: exit %d %s", r.code, r.stdout)
	}
	if r := mustRun(t, environ, "connectors", "--json"); !strings.Contains(r.stdout, `"channels":["EPOSTA"]`) {
		t.Fatalf("a refused update changed the connector: %s", r.stdout)
	}
	admin.AddRight(sandbox.RightRule{BrandCode: "600001", Type: consent.TypeMesaj, Right: sandbox.RightWrite, Granted: true})

	r = mustRun(t, environ, "install", "--update", "--brand-code", "600001", "--channels", "EPOSTA,MESAJ", "--default-source", "HS_MESAJ")
	if !strings.Contains(r.stdout, "İYS confirmed") || !strings.Contains(r.stdout, "MESAJ") {
		t.Errorf("--update said %q", r.stdout)
	}
	r = mustRun(t, environ, "connectors", "--json")
	if !strings.Contains(r.stdout, `"channels":["MESAJ","EPOSTA"]`) || !strings.Contains(r.stdout, `"defaultSource":"HS_MESAJ"`) ||
		!strings.Contains(r.stdout, `"recipientType":"BIREYSEL"`) {
		t.Fatalf("after --update: %s", r.stdout)
	}
	mustRun(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f)
	// A channel added unchecked leaves the connector unverified.
	mustRun(t, environ, "install", "--update", "--brand-code", "600001", "--channels", "EPOSTA,MESAJ,ARAMA", "--skip-verify")
	if r := mustRun(t, environ, "connectors", "--json"); !strings.Contains(r.stdout, `"channels":["MESAJ","ARAMA","EPOSTA"]`) ||
		!strings.Contains(r.stdout, `"verified":false`) {
		t.Errorf("after --update --skip-verify: %s", r.stdout)
	}
	if r := runCmd(t, environ, "install", "--update", "--brand-code", "600001", "--iys-code", "700002"); r.code != exitUsage {
		t.Errorf("--update of the İYS code: exit %d", r.code)
	}
	if r := runCmd(t, environ, "install", "--update", "--brand-code", "600009", "--channels", "MESAJ"); r.code != exitFatal {
		t.Errorf("--update of a connector not installed: exit %d", r.code)
	}
}

// Uninstall is refused while a batch is in flight; then the connector is
// served no more, its records kept, and install brings it back.
func TestUninstallRefusesWithBatchesInFlight(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	mustRun(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001")
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	mustRun(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f)

	// A run that died with a batch claimed.
	ctx := context.Background()
	st, err := store.Open(ctx, environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Connector(ctx, "600001")
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.StartRun(ctx, c.ID, consent.TriggerRunNow)
	if err != nil {
		t.Fatal(err)
	}
	if b, _, err := st.ClaimBatch(ctx, c.ID, run, 10, time.Now()); err != nil || b == 0 {
		t.Fatal(b, err)
	}
	r := runCmd(t, environ, "uninstall", "--brand-code", "600001")
	if r.code != exitFatal || !strings.Contains(r.stderr, "in flight") {
		t.Fatalf("uninstall with a batch in flight: exit %d %s", r.code, r.stderr)
	}
	if r := runCmd(t, environ, "uninstall", "--brand-code", "600001", "--purge"); r.code != exitUsage {
		t.Errorf("--purge without --yes: exit %d", r.code)
	}

	// The next run recovers the batch and sends the record; then uninstall goes.
	mustRun(t, environ, "--run-now")
	r = mustRun(t, environ, "uninstall", "--brand-code", "600001")
	if !strings.Contains(r.stdout, "kept") {
		t.Errorf("uninstall said %q", r.stdout)
	}
	if r := mustRun(t, environ, "connectors", "--json"); strings.Contains(r.stdout, "600001") {
		t.Errorf("connectors lists the uninstalled connector: %s", r.stdout)
	}
	if r := runCmd(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f); r.code != exitFatal {
		t.Errorf("an import into an uninstalled connector: exit %d", r.code)
	}
	if sum, r := runNowJSON(t, environ); r.code != 0 || len(sum.Connectors) != 0 {
		t.Errorf("a run after uninstall: exit %d %s", r.code, r.stdout)
	}

	mustRun(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001")
	if c := statusOf(t, environ); c.Records.Synced != 1 {
		t.Errorf("installed again: %+v, want its record back", c.Records)
	}
	r = mustRun(t, environ, "uninstall", "--brand-code", "600001", "--purge", "--yes")
	if !strings.Contains(r.stdout, "1 record deleted") {
		t.Errorf("--purge said %q", r.stdout)
	}
}

// runs lists every run, newest first, per connector or all.
func TestRunsListsEveryRun(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	if r := mustRun(t, environ, "runs"); !strings.Contains(r.stdout, "No runs yet") {
		t.Errorf("runs before any: %q", r.stdout)
	}
	mustRun(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001")
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	mustRun(t, environ, "import", "--brand-code", "600001", "--channel", "sms", f)
	for range 3 {
		mustRun(t, environ, "--run-now")
	}
	var out struct {
		Runs []runJSON `json:"runs"`
	}
	r := mustRun(t, environ, "runs", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Runs) != 3 {
		t.Fatalf("runs --json: %v %s", err, r.stdout)
	}
	for i, run := range out.Runs {
		if run.BrandCode != "600001" || run.Trigger != "run-now" || run.Status != "completed" || run.StartedAt == "" || run.FinishedAt == "" {
			t.Errorf("run %d: %+v", i, run)
		}
		if i > 0 && run.RunID >= out.Runs[i-1].RunID {
			t.Errorf("not newest first: %+v", out.Runs)
		}
	}
	if last := out.Runs[2]; last.Sent != 1 || last.Accepted != 1 {
		t.Errorf("the first run sent the record: %+v", last)
	}
	r = mustRun(t, environ, "runs", "--brand-code", "600001", "--limit", "2")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "BRAND") {
		t.Errorf("runs --limit 2: %q", r.stdout)
	}
	if r := runCmd(t, environ, "runs", "--limit", "0"); r.code != exitUsage {
		t.Errorf("--limit 0: exit %d", r.code)
	}
	if r := runCmd(t, environ, "runs", "--brand-code", "600009"); r.code != exitFatal {
		t.Errorf("runs of a brand not installed: exit %d", r.code)
	}
}
