package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// The kill tests run the real `iys-sync --run-now` (this test binary running
// main, see TestMain) as processes of their own, against a fresh database
// and an in-process sandbox İYS over HTTP on 127.0.0.1.
//
// The binary polls a bulk request first 2 s after sending it (the engine's
// DefaultPollInitial: the binary sets no other), so every batch spends
// about 2 s submitted: the window in which a kill finds requests in flight.
const (
	ksUser     = "kill-sync-test"
	ksPassword = "kill-sync-test-pass"

	ksLines       = 25_000 // lines of the upload file; --type MESAJ,ARAMA makes two records of each
	ksRecords     = 2 * ksLines
	ksBatchSize   = 1000
	ksConcurrency = 8
	ksKills       = 3
)

// ksWant is what İYS must end up holding (or refusing) for one record.
type ksWant struct {
	status consent.Status
	date   string // İYS's layout, Türkiye time
	source consent.Source
}

// ksWorld is one test's database, connector B1 and sandbox.
type ksWorld struct {
	environ map[string]string
	db      *sql.DB
	sb      *sandboxtest.Server
}

func newKSWorld(t *testing.T, sbOpts sandbox.Options) *ksWorld {
	t.Helper()
	environ, db := installed(t)
	sbOpts.Username, sbOpts.Password = ksUser, ksPassword
	return &ksWorld{environ: environ, db: db, sb: sandboxtest.Start(t, sbOpts)}
}

// ksPlatforms cycle through the lines, with the source each maps to.
var ksPlatforms = []struct {
	platform string
	source   consent.Source
}{
	{"SMS", consent.SourceMesaj}, {"web", consent.SourceWeb}, {"mobileapp", consent.SourceMobil},
	{"form", consent.SourceFizikselOrtam}, {"callcenter", consent.SourceCagriMerkezi},
}

// importLines writes an SMS upload file of n lines, phones first..first+n-1,
// every fifth a RET (with no earlier record at İYS: H175, not listed), the
// rest ONAY, dated within the last hours, and imports it for brand as MESAJ
// and ARAMA through the real import command. It returns what each record
// must become, by recipient/recipientType/type.
func (w *ksWorld) importLines(t *testing.T, brand string, first, n int, everyRet int) map[string]ksWant {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sms-"+brand+".txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	want := make(map[string]ksWant, 2*n)
	newest := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range n {
		phone := fmt.Sprintf("90532%07d", first+i)
		p := ksPlatforms[i%len(ksPlatforms)]
		status := consent.StatusOnay
		if everyRet > 0 && i%everyRet == 0 {
			status = consent.StatusRet
		}
		at := consent.NewDate(newest.Add(-time.Duration(i%7200) * time.Second))
		line := fmt.Sprintf("%s; %s; %s; %s; ext%d\n", phone, p.platform, status,
			at.Time().Format("02.01.2006 15:04:05"), first+i)
		if _, err := bw.WriteString(line); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []consent.Type{consent.TypeMesaj, consent.TypeArama} {
			want["+"+phone+"/"+string(consent.Bireysel)+"/"+string(typ)] = ksWant{status: status, date: at.String(), source: p.source}
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, w.environ, "import", "--brand-code", brand, "--channel", "sms", "--type", "MESAJ,ARAMA", path)
	if r.code != 0 {
		t.Fatalf("import: exit %d, %s", r.code, r.stderr)
	}
	return want
}

// ksChild is one `iys-sync --run-now` process.
type ksChild struct {
	name           string
	app            string // its sessions' application_name
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer // read only once it has exited
	exited         chan error   // holds Wait's error once it has exited
}

// startRunNow starts `iys-sync --run-now --json args...` against the world's
// database and sandbox.
func (w *ksWorld) startRunNow(t *testing.T, name string, args ...string) *ksChild {
	t.Helper()
	return w.start(t, name, append([]string{"--run-now", "--json"}, args...), nil)
}

// start starts `iys-sync args...` against the world's database and
// sandbox, with the settings environ added.
func (w *ksWorld) start(t *testing.T, name string, args []string, environ []string) *ksChild {
	t.Helper()
	c := &ksChild{name: name, app: "iys-kill-sync-" + name, exited: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(append(withoutIYS(os.Environ()), runMainEnv+"=1",
		"IYS_DATABASE_URL="+withAppName(t, w.environ["IYS_DATABASE_URL"], c.app),
		"IYS_API_URL="+w.sb.URL, "IYS_USERNAME="+ksUser, "IYS_PASSWORD="+ksPassword,
		fmt.Sprintf("IYS_BATCH_SIZE=%d", ksBatchSize), fmt.Sprintf("IYS_CONCURRENCY=%d", ksConcurrency),
		"IYS_RATE_LIMIT=0", "IYS_LOG_LEVEL=info", "IYS_LOG_FORMAT=json"), environ...)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		c.cmd.Process.Kill() //nolint:errcheck // it may be gone already
		err := <-c.exited
		c.exited <- err
	})
	return c
}

// running reports whether the process is still going.
func (c *ksChild) running() bool {
	select {
	case err := <-c.exited:
		c.exited <- err
		return false
	default:
		return true
	}
}

// wait waits for the process to end by itself and returns its exit code.
func (c *ksChild) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case err := <-c.exited:
		c.exited <- err
	case <-time.After(limit):
		c.cmd.Process.Kill() //nolint:errcheck // it may be gone already
		err := <-c.exited
		c.exited <- err
		t.Fatalf("%s did not finish in %v; stderr:\n%s", c.name, limit, tailOf(c.stderr.String(), 4000))
	}
	return c.cmd.ProcessState.ExitCode()
}

// summary decodes the --json summary the process printed, as the engine's.
func (c *ksChild) summary(t *testing.T) engine.Summary {
	t.Helper()
	var s runSummaryJSON
	if err := json.Unmarshal(c.stdout.Bytes(), &s); err != nil {
		t.Fatalf("%s printed no JSON summary: %v\nstdout: %s\nstderr: %s", c.name, err, c.stdout.String(),
			tailOf(c.stderr.String(), 4000))
	}
	count := func(n *int) int {
		if n == nil {
			return engine.PendingUnknown
		}
		return *n
	}
	sum := engine.Summary{Pending: count(s.Pending), Failed: s.Failed}
	for _, c := range s.Connectors {
		sum.Connectors = append(sum.Connectors, engine.ConnectorSummary{BrandCode: c.BrandCode, RunID: c.RunID, Status: c.Status,
			Sent: c.Sent, Accepted: c.Accepted, Rejected: c.Rejected, Retried: c.Retried, Failed: c.Failed,
			Pending: count(c.Pending), Skipped: c.Skipped, Err: c.Error})
	}
	return sum
}

// kill SIGKILLs the process, checks it died of it, and waits until the
// server has ended its sessions (and so freed its connector locks).
func (w *ksWorld) kill(t *testing.T, c *ksChild) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-c.exited
	c.exited <- err
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s was not killed but ended by itself (%v); stdout: %s\nstderr: %s", c.name, err, c.stdout.String(),
			tailOf(c.stderr.String(), 4000))
	}
	waitUntil(t, time.Minute, "the server to end the killed run's sessions", func() bool {
		return w.count(t, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, c.app) == 0
	})
}

// waitFor polls cond (a query giving one boolean) until it is true; the
// process must still be running meanwhile.
func (w *ksWorld) waitFor(t *testing.T, c *ksChild, what, cond string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var ok bool
		if err := w.db.QueryRow(cond, args...).Scan(&ok); err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		if ok {
			return
		}
		if !c.running() {
			t.Fatalf("%s ended (exit %d) before %s; stdout: %s\nstderr: %s", c.name, c.cmd.ProcessState.ExitCode(), what,
				c.stdout.String(), tailOf(c.stderr.String(), 4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s", c.name, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *ksWorld) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := w.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// newRun waits for the run after prev to be recorded and returns its id.
func (w *ksWorld) newRun(t *testing.T, c *ksChild, prev int64) int64 {
	t.Helper()
	w.waitFor(t, c, "its run to start", `SELECT EXISTS (SELECT FROM runs WHERE id > $1)`, prev)
	var id int64
	if err := w.db.QueryRow(`SELECT max(id) FROM runs`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// progress is a one-line picture of batches and records, for the log.
func (w *ksWorld) progress(t *testing.T) string {
	t.Helper()
	var s string
	if err := w.db.QueryRow(`SELECT
		'batches ' || coalesce((SELECT string_agg(state || '=' || n, ' ' ORDER BY state)
		                        FROM (SELECT state, count(*) AS n FROM batches GROUP BY state) b), 'none') ||
		'; records ' || coalesce((SELECT string_agg(state || '=' || n, ' ' ORDER BY state)
		                          FROM (SELECT state, count(*) AS n FROM consents GROUP BY state) c), 'none')`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// ksDBRecord is a consent record as the database holds it at the end.
type ksDBRecord struct {
	status, date, source, state, outcome, code, txn string
}

func (w *ksWorld) dbRecords(t *testing.T, brand string) map[string]ksDBRecord {
	t.Helper()
	rows, err := w.db.Query(`
		SELECT c.recipient || '/' || c.recipient_type || '/' || c.type, c.status,
		       to_char(c.consent_date AT TIME ZONE 'Europe/Istanbul', 'YYYY-MM-DD HH24:MI:SS'), c.source, c.state,
		       coalesce(c.outcome, ''), coalesce(c.iys_code, ''), coalesce(c.transaction_id, '')
		FROM consents c JOIN connectors k ON k.id = c.connector_id WHERE k.brand_code = $1`, brand)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]ksDBRecord{}
	for rows.Next() {
		var k string
		var r ksDBRecord
		if err := rows.Scan(&k, &r.status, &r.date, &r.source, &r.state, &r.outcome, &r.code, &r.txn); err != nil {
			t.Fatal(err)
		}
		out[k] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSynced holds İYS and the database to what was imported, record by
// record. A RET (no earlier record at İYS) must be rejected as
// no_prior_record and not listed; an ONAY must be synced, accepted with
// İYS's transaction id, or already_in_iys when allowAlready says so (a
// resend after a kill). It returns the number of already_in_iys records.
func (w *ksWorld) checkSynced(t *testing.T, brand string, want map[string]ksWant, allowAlready bool) int {
	t.Helper()
	held := w.sb.Admin.Held(brand)
	db := w.dbRecords(t, brand)
	if len(db) != len(want) {
		t.Fatalf("%s: %d records in the database, want %d", brand, len(db), len(want))
	}
	onay, already := 0, 0
	for k, wnt := range want {
		r, ok := db[k]
		if !ok {
			t.Fatalf("%s: no record %s in the database", brand, k)
		}
		if r.status != string(wnt.status) || r.date != wnt.date || r.source != string(wnt.source) {
			t.Fatalf("%s: database holds %+v, imported %+v", k, r, wnt)
		}
		h, listed := held[k]
		if wnt.status == consent.StatusRet {
			if listed {
				t.Fatalf("%s: İYS lists %+v, but a RET with no earlier record is not listed", k, h)
			}
			if r.state != string(consent.StateRejected) || r.outcome != string(consent.OutcomeNoPriorRecord) || r.code != "H175" {
				t.Fatalf("%s: %s/%s/%s, want rejected/no_prior_record/H175", k, r.state, r.outcome, r.code)
			}
			continue
		}
		onay++
		if !listed {
			t.Fatalf("%s: İYS holds nothing (database: %+v)", k, r)
		}
		if h.Status != string(wnt.status) || h.ConsentDate != wnt.date || h.Source != string(wnt.source) ||
			h.BrandCode != brand || h.Recipient+"/"+h.RecipientType+"/"+h.Type != k {
			t.Fatalf("%s: İYS holds %+v, imported %+v", k, h, wnt)
		}
		switch {
		case r.state == string(consent.StateSynced) && r.outcome == string(consent.OutcomeAccepted):
			if r.txn == "" || r.txn != h.TransactionID {
				t.Fatalf("%s: accepted with transaction %q, İYS recorded %q", k, r.txn, h.TransactionID)
			}
		case allowAlready && r.state == string(consent.StateSynced) && r.outcome == string(consent.OutcomeAlreadyInIYS) && r.code == "H174":
			already++
		default:
			t.Fatalf("%s: %s/%s/%s, want synced/accepted", k, r.state, r.outcome, r.code)
		}
	}
	if len(held) != onay {
		t.Fatalf("%s: İYS holds %d records, want the %d ONAY", brand, len(held), onay)
	}
	return already
}

// checkSentOnce checks that a record whose requestId was saved was never
// put in another batch after that one (its request was polled, not sent
// again), that each record was in exactly one request whose id was saved
// (its result came from there), and that only records of a batch released
// without a requestId (a kill between sending and saving) were found
// already in İYS.
func (w *ksWorld) checkSentOnce(t *testing.T) {
	t.Helper()
	if n := w.count(t, `SELECT count(*) FROM batch_items a JOIN batches ba ON ba.id = a.batch_id AND ba.request_id IS NOT NULL
		JOIN batch_items b ON b.consent_id = a.consent_id AND b.batch_id > a.batch_id`); n != 0 {
		t.Fatalf("%d records were claimed again after their requestId was saved", n)
	}
	if n := w.count(t, `SELECT count(*) FROM consents c LEFT JOIN (
		SELECT bi.consent_id, count(*) AS n FROM batch_items bi JOIN batches b ON b.id = bi.batch_id
		WHERE b.request_id IS NOT NULL GROUP BY bi.consent_id) s ON s.consent_id = c.id
		WHERE s.n IS DISTINCT FROM 1`); n != 0 {
		t.Fatalf("%d records are not in exactly one saved bulk request", n)
	}
	if n := w.count(t, `SELECT count(*) FROM consents c WHERE outcome = 'already_in_iys' AND c.id NOT IN (
		SELECT bi.consent_id FROM batch_items bi JOIN batches b ON b.id = bi.batch_id
		WHERE b.request_id IS NULL AND b.state = 'released')`); n != 0 {
		t.Fatalf("%d records are already_in_iys though none of their batches was left unsaved", n)
	}
}

// TestSyncKilledThreeTimesLosesNothing checks that killing
// the worker with SIGKILL 3 times during a 50,000-record run, then running
// it again, loses nothing and leaves no record in flight. The real binary is
// killed right after its first bulk requests went out, while it polls the
// requests of a later run, and at a random moment; a fourth run finishes.
// İYS must then hold exactly what was imported, every record must have its
// outcome, and a record whose requestId was saved must never have been put
// in another batch: it is polled, not sent again. Only the records of
// batches killed before their requestId was saved may be sent twice (İYS
// answers H174: already_in_iys).
func TestSyncKilledThreeTimesLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs 50,000 records through 4 processes")
	}
	w := newKSWorld(t, sandbox.Options{Latency: 30 * time.Millisecond, AsyncDelay: 200 * time.Millisecond})
	t0 := time.Now()
	want := w.importLines(t, "B1", 0, ksLines, 5)
	nOnay := 0
	for _, v := range want {
		if v.status == consent.StatusOnay {
			nOnay++
		}
	}
	t.Logf("imported %d records in %v", len(want), time.Since(t0).Round(time.Millisecond))
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("random seed %d", seed)

	var prevRun int64
	for k := 1; k <= ksKills; k++ {
		start := time.Now()
		c := w.startRunNow(t, fmt.Sprint(k))
		run := w.newRun(t, c, prevRun)
		var at string
		switch k {
		case 1:
			// Right after the first bulk requests went out: others of the
			// same moment may be sent but not yet saved.
			at = "after its first bulk requests were saved"
			w.waitFor(t, c, at, `SELECT count(*) >= 2 FROM batches WHERE run_id = $1 AND state = 'submitted'`, run)
		case 2:
			// In the middle of polling: batches of its own have finished,
			// others are submitted and being polled.
			at = "while polling, after batches of its own finished"
			w.waitFor(t, c, at, `SELECT (SELECT count(*) FROM batches WHERE run_id = $1 AND state = 'done') >= 2
				AND (SELECT count(*) FROM batches WHERE run_id = $1 AND state = 'submitted'
				     AND submitted_at < now() - interval '200 milliseconds') >= 1`, run)
		default:
			w.waitFor(t, c, "its first batch", `SELECT EXISTS (SELECT FROM batches WHERE run_id = $1)`, run)
			d := time.Duration(rng.Int64N(int64(2500 * time.Millisecond)))
			at = fmt.Sprintf("at a random moment, %v after its first batch", d.Round(time.Millisecond))
			time.Sleep(d)
			if !c.running() {
				t.Fatalf("run %d ended before its random kill (exit %d); stderr: %s", k, c.cmd.ProcessState.ExitCode(),
					tailOf(c.stderr.String(), 4000))
			}
		}
		w.kill(t, c)
		t.Logf("kill %d %s (run %d, %v in): %s", k, at, run, time.Since(start).Round(time.Millisecond), w.progress(t))
		prevRun = run
	}

	start := time.Now()
	final := w.startRunNow(t, "final")
	if code := final.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("the run after the kills: exit %d, want 0; stdout: %s\nstderr: %s", code, final.stdout.String(),
			tailOf(final.stderr.String(), 4000))
	}
	sum := final.summary(t)
	t.Logf("final run: %v, %s; summary %+v", time.Since(start).Round(time.Millisecond), w.progress(t), sum.Connectors)
	if len(sum.Connectors) != 1 || sum.Connectors[0].Status != consent.RunCompleted || sum.Pending != 0 || sum.Failed != 0 {
		t.Fatalf("final summary %+v, want B1 completed with nothing left", sum)
	}

	// Every record: its outcome, and İYS holding exactly what was imported.
	already := w.checkSynced(t, "B1", want, true)
	if n := w.count(t, `SELECT count(*) FROM consents WHERE state IN ('pending', 'in_flight', 'failed')`); n != 0 {
		t.Fatalf("%d records pending, in flight or failed, want none", n)
	}
	if n := w.count(t, `SELECT count(*) FROM batches WHERE state IN ('claimed', 'submitted')`); n != 0 {
		t.Fatalf("%d batches left claimed or submitted", n)
	}
	if n := w.count(t, `SELECT count(*) FROM batches WHERE request_id IS NOT NULL AND state <> 'done'`); n != 0 {
		t.Fatalf("%d batches with a saved requestId were not finished from their results", n)
	}

	w.checkSentOnce(t)

	// What İYS received: every record once, plus at most the records of the
	// batches left without a requestId, at most concurrency batches a kill.
	var unsavedBatches, unsavedRecords, savedBatches int
	if err := w.db.QueryRow(`SELECT count(*) FILTER (WHERE request_id IS NULL AND state = 'released'),
		coalesce(sum(size) FILTER (WHERE request_id IS NULL AND state = 'released'), 0),
		count(*) FILTER (WHERE request_id IS NOT NULL) FROM batches`).Scan(&unsavedBatches, &unsavedRecords, &savedBatches); err != nil {
		t.Fatal(err)
	}
	st := w.sb.Admin.Stats()
	items, bulk := st.Processed(), st.Requests[sandboxtest.RouteSubmitBulk]
	t.Logf("İYS got %d bulk requests (%d saved, %d batches released unsaved holding %d records), %d consents: %d recorded, refused %v; %d records already_in_iys",
		bulk, savedBatches, unsavedBatches, unsavedRecords, items, st.Recorded, st.Refused, already)
	if unsavedBatches > ksKills*ksConcurrency {
		t.Fatalf("%d batches released unsaved: more than %d a kill", unsavedBatches, ksConcurrency)
	}
	if items < ksRecords || items-ksRecords > int64(unsavedRecords) {
		t.Fatalf("İYS processed %d consents for %d records: %d resent, but only the %d records of unsaved batches may be",
			items, ksRecords, items-ksRecords, unsavedRecords)
	}
	if items > ksRecords+ksKills*ksBatchSize*ksConcurrency {
		t.Fatalf("İYS processed %d consents, over %d", items, ksRecords+ksKills*ksBatchSize*ksConcurrency)
	}
	if bulk < int64(savedBatches) || bulk > int64(savedBatches+unsavedBatches) {
		t.Fatalf("%d bulk requests, want %d saved plus at most %d unsaved", bulk, savedBatches, unsavedBatches)
	}
	// An ONAY left unsaved by two kills reaches İYS three times: recorded
	// once, then H174 twice, for one already_in_iys record.
	if h174 := st.Refused["H174"]; st.Recorded != int64(nOnay) || h174 < int64(already) || h174 > int64(already+unsavedRecords) ||
		st.Refused["H175"] < int64(ksRecords-nOnay) || int64(len(st.Refused)) > 2 {
		t.Fatalf("İYS recorded %d (want %d, each ONAY once) and refused %v (want H174 from %d already_in_iys to %d more, H175 >= %d RET)",
			st.Recorded, nOnay, st.Refused, already, unsavedRecords, ksRecords-nOnay)
	}

	t.Logf("checked in %v", time.Since(start).Round(time.Millisecond))

	// The killed runs are closed as failed, each by the next one.
	rows, err := w.db.Query(`SELECT id, status, coalesce(error, ''), finished_at IS NOT NULL FROM runs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var runs []struct {
		id       int64
		status   string
		errText  string
		finished bool
	}
	for rows.Next() {
		var r struct {
			id       int64
			status   string
			errText  string
			finished bool
		}
		if err := rows.Scan(&r.id, &r.status, &r.errText, &r.finished); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(runs) != ksKills+1 {
		t.Fatalf("%d runs, want %d", len(runs), ksKills+1)
	}
	for i, r := range runs {
		if i == ksKills {
			if r.status != string(consent.RunCompleted) || !r.finished || r.errText != "" {
				t.Fatalf("the last run: %+v, want completed", r)
			}
			continue
		}
		if wantErr := fmt.Sprintf("killed (closed by run %d)", runs[i+1].id); r.status != string(consent.RunFailed) ||
			!r.finished || r.errText != wantErr {
			t.Fatalf("killed run %d: %+v, want failed, %q", i+1, r, wantErr)
		}
	}
	t.Logf("whole test %v", time.Since(t0).Round(time.Millisecond))
}

// TestTwoWorkersNeverSendARecordTwice checks that two
// workers running at the same time never send a record twice. Two real
// `--run-now` processes start at once on the same database and sandbox,
// over three connectors with fresh records: each connector must be served
// by one of them and reported skipped by the other (a skip proves they ran
// at once: the other held its lock), and İYS must have received every
// record exactly once: as many consents as records, all recorded.
func TestTwoWorkersNeverSendARecordTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two sync processes")
	}
	w := newKSWorld(t, sandbox.Options{Latency: 20 * time.Millisecond, AsyncDelay: 100 * time.Millisecond})
	brands := []string{"B1", "B2", "B3"}
	for i, b := range brands[1:] {
		if r := runCmd(t, w.environ, "install", "--brand-code", b, "--iys-code", fmt.Sprintf("I%d", i+2), "--skip-verify"); r.code != 0 {
			t.Fatalf("install %s: exit %d, %s", b, r.code, r.stderr)
		}
	}
	const lines = 2000 // two records each: 4 batches of 1000 per connector
	want := map[string]map[string]ksWant{}
	for i, b := range brands {
		want[b] = w.importLines(t, b, i*lines, lines, 0)
	}
	total := len(brands) * 2 * lines

	start := time.Now()
	a := w.startRunNow(t, "a")
	b := w.startRunNow(t, "b")
	codes := map[*ksChild]int{a: a.wait(t, 2*time.Minute), b: b.wait(t, 2*time.Minute)}
	t.Logf("both processes ended in %v: exit %d and %d", time.Since(start).Round(time.Millisecond), codes[a], codes[b])

	st := w.sb.Admin.Stats()
	var saved int
	if err := w.db.QueryRow(`SELECT count(*) FROM batches WHERE request_id IS NOT NULL`).Scan(&saved); err != nil {
		t.Fatal(err)
	}
	t.Logf("İYS got %d bulk requests, %d consents: %d recorded, refused %v", st.Requests[sandboxtest.RouteSubmitBulk], st.Processed(), st.Recorded, st.Refused)
	// İYS got exactly as many consents as there are keys, and holds every
	// key (checkSynced below): each was sent exactly once.
	if st.Processed() != int64(total) || st.Recorded != int64(total) || len(st.Refused) != 0 {
		t.Fatalf("İYS processed %d consents (%d recorded, refused %v) for %d records: some were sent twice",
			st.Processed(), st.Recorded, st.Refused, total)
	}
	// One bulk request per saved batch. (Claims running at once may split
	// the last records of a connector: a batch may hold fewer than 1000.)
	if st.Requests[sandboxtest.RouteSubmitBulk] != int64(saved) || saved < total/ksBatchSize {
		t.Fatalf("%d bulk requests for %d saved batches, want one each and at least %d", st.Requests[sandboxtest.RouteSubmitBulk], saved, total/ksBatchSize)
	}
	for _, br := range brands {
		if n := w.checkSynced(t, br, want[br], false); n != 0 {
			t.Fatalf("%s: %d already_in_iys", br, n)
		}
	}
	served := map[string]int{}
	skipped := map[string]int{}
	for _, c := range []*ksChild{a, b} {
		sum := c.summary(t)
		t.Logf("process %s: %+v", c.name, sum.Connectors)
		skips := 0
		for _, cs := range sum.Connectors {
			switch {
			case cs.Skipped:
				skipped[cs.BrandCode]++
				skips++
				if !strings.Contains(cs.Err, "another run") {
					t.Fatalf("process %s skipped %s: %q, want another run holding it", c.name, cs.BrandCode, cs.Err)
				}
			default:
				served[cs.BrandCode]++
				if cs.Status != consent.RunCompleted || cs.Sent != 2*lines || cs.Accepted != 2*lines || cs.Pending != 0 {
					t.Fatalf("process %s served %s: %+v, want completed with %d sent and accepted", c.name, cs.BrandCode, cs, 2*lines)
				}
			}
		}
		if wantCode := map[bool]int{true: exitRejected, false: 0}[skips > 0]; codes[c] != wantCode {
			t.Fatalf("process %s: exit %d with %d connectors skipped, want %d; stderr: %s", c.name, codes[c], skips, wantCode,
				tailOf(c.stderr.String(), 4000))
		}
	}
	for _, br := range brands {
		if served[br] != 1 || skipped[br] != 1 {
			t.Fatalf("%s: served by %d processes and skipped by %d, want one each (they ran at once)", br, served[br], skipped[br])
		}
	}

	if n := w.count(t, `SELECT count(*) FROM runs WHERE status = 'completed'`); n != len(brands) || w.count(t, `SELECT count(*) FROM runs`) != n {
		t.Fatalf("runs: %d completed of %d, want one completed run per connector", n, w.count(t, `SELECT count(*) FROM runs`))
	}
}

// tailOf is the end of a long output, for failure messages.
func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
