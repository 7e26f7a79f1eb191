package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// A --run-now against a sandbox that holds some recipients invalid (and
// so refuses whole every bulk request holding one) ends in one run: exit
// 0, the refused records rejected as invalid, every other one synced.
func TestRunNowIsolatesRefusedRecipients(t *testing.T) {
	t.Parallel()
	for _, extra := range [][]string{nil, {"--refusal-without-index"}} {
		name := "with index"
		if extra != nil {
			name = "without index"
		}
		t.Run(name, func(t *testing.T) {
			url := startSandboxCmd(t, append([]string{"--seed", "5", "--brand", "700001:600001",
				"--invalid-recipient", `^\+90533123450[27]$`}, extra...)...)
			environ := map[string]string{"IYS_DATABASE_URL": storedb.NewDB(t), "IYS_API_URL": url,
				"IYS_USERNAME": sandbox.DefaultUsername, "IYS_PASSWORD": sandbox.DefaultPassword,
				"IYS_INTEGRATOR_CODE": "900001", "IYS_RATE_LIMIT": "0"}
			if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != 0 {
				t.Fatal(r.stderr)
			}
			at := uploadTime(time.Now().Add(-time.Hour))
			var lines []string
			for i := range 30 {
				lines = append(lines, fmt.Sprintf("9053312345%02d; SMS; ONAY; %s", i, at))
			}
			f := writeFile(t, "s.txt", strings.Join(lines, "\n")+"\n")
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
			if c.Records.Synced != 28 || c.Records.Rejected != 2 || c.Records.Pending != 0 || c.Outcomes.Invalid != 2 ||
				c.LastRun == nil || c.LastRun.Status != "completed" || c.LastRun.Sent != 30 {
				t.Fatalf("records %+v outcomes %+v last run %+v", c.Records, c.Outcomes, c.LastRun)
			}
			r = runCmd(t, environ, "report", "--brand-code", "600001", "--state", "rejected", "--format", "csv")
			if r.code != 0 || !strings.Contains(r.stdout, "+905331234502") || !strings.Contains(r.stdout, "+905331234507") ||
				strings.Count(r.stdout, "H121") != 2 {
				t.Fatalf("report of the rejected: exit %d\n%s", r.code, r.stdout)
			}
		})
	}
}

// TestSyncKilledWhileIsolatingLosesNothing: the run is killed while it
// sends again the consents of a batch İYS refused whole (some of its
// requests accepted and saved, others not sent yet). The next run polls the
// saved requests (their records end accepted, not sent twice), sends the
// rest, and ends with every record's outcome: the refused ones rejected,
// every other one at İYS.
func TestSyncKilledWhileIsolatingLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs 6,000 records through 2 processes")
	}
	bad := regexp.MustCompile(`^\+90532000(0011|0777|1500|1501|2222|2998|2999)$`)
	w := newKSWorld(t, sandbox.Options{Latency: 20 * time.Millisecond, InvalidRecipient: bad, RefusalWithoutIndex: true})
	want := w.importLines(t, "B1", 0, 3000, 0)

	c := w.startRunNow(t, "killed")
	run := w.newRun(t, c, 0)
	// A batch that still holds records, some of whose others went out in
	// requests of their own: isolation in progress.
	w.waitFor(t, c, "the middle of an isolation", `SELECT EXISTS (
		SELECT FROM batches p JOIN batch_items bi ON bi.batch_id = p.id JOIN consents r ON r.id = bi.consent_id
		WHERE p.run_id = $1 AND p.state = 'claimed' AND r.batch_id <> p.id
		GROUP BY p.id HAVING count(*) >= 2)`, run)
	w.kill(t, c)
	t.Logf("killed: %s", w.progress(t))
	if n := w.count(t, `SELECT count(DISTINCT p.id) FROM batches p JOIN batch_items bi ON bi.batch_id = p.id
		JOIN consents r ON r.id = bi.consent_id WHERE p.state = 'claimed' AND r.batch_id <> p.id`); n == 0 {
		t.Fatal("the isolation ended before the kill: the test did not kill it midway")
	}
	var saved []int64
	// The records of every request whose requestId was saved and whose
	// results were not written yet: the next run must poll them.
	rows, err := w.db.Query(`SELECT bi.consent_id FROM batches b JOIN batch_items bi ON bi.batch_id = b.id
		JOIN consents c ON c.id = bi.consent_id AND c.batch_id = b.id AND c.state = 'in_flight'
		WHERE b.request_id IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, id)
	}
	rows.Close()
	if len(saved) == 0 {
		t.Fatal("the kill left no saved request to poll")
	}

	final := w.startRunNow(t, "final")
	if code := final.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("the run after the kill: exit %d; stdout: %s\nstderr: %s", code, final.stdout.String(),
			tailOf(final.stderr.String(), 4000))
	}
	sum := final.summary(t)
	if len(sum.Connectors) != 1 || sum.Connectors[0].Status != consent.RunCompleted || sum.Pending != 0 || sum.Failed != 0 {
		t.Fatalf("final summary %+v, want completed with nothing left", sum)
	}
	held := w.sb.Admin.Held("B1")
	db := w.dbRecords(t, "B1")
	if len(db) != len(want) || len(held) != len(want)-14 {
		t.Fatalf("%d records in the database, İYS holds %d; want %d and %d", len(db), len(held), len(want), len(want)-14)
	}
	for k, wnt := range want {
		r := db[k]
		h, listed := held[k]
		if bad.MatchString(strings.SplitN(k, "/", 2)[0]) {
			if listed || r.state != "rejected" || r.outcome != "invalid" || r.code != "H121" {
				t.Fatalf("%s: %+v, at İYS %v; want rejected invalid H121, not at İYS", k, r, listed)
			}
			continue
		}
		if !listed || h.Status != string(wnt.status) || h.ConsentDate != wnt.date || r.state != "synced" ||
			(r.outcome != "accepted" && r.outcome != "already_in_iys") {
			t.Fatalf("%s: %+v, İYS holds %+v (%v); want synced", k, r, h, listed)
		}
	}
	// The requests saved before the kill were polled, not sent again.
	if n := w.count(t, `SELECT count(*) FROM consents WHERE id = ANY($1) AND (state <> 'synced' OR outcome <> 'accepted')`,
		pq.Array(saved)); n != 0 {
		t.Fatalf("%d records of requests saved before the kill did not end accepted from them", n)
	}
	if n := w.count(t, `SELECT count(*) FROM batches WHERE state IN ('claimed', 'submitted')`); n != 0 {
		t.Fatalf("%d batches left open", n)
	}
}
