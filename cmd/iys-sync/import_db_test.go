package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
)

// installed returns the environment of a fresh database with connector B1.
func installed(t *testing.T) (map[string]string, *sql.DB) {
	t.Helper()
	environ := map[string]string{"IYS_DATABASE_URL": storedb.NewDB(t)}
	if r := runCmd(t, environ, "install", "--brand-code", "B1", "--iys-code", "I1", "--skip-verify"); r.code != 0 {
		t.Fatalf("install: exit %d, %s", r.code, r.stderr)
	}
	db, err := sql.Open("postgres", environ["IYS_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return environ, db
}

// records reads every consent record as "recipient type status date source ext version state".
func records(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `
		SELECT recipient, type, status, to_char(consent_date AT TIME ZONE 'Europe/Istanbul', 'YYYY-MM-DD HH24:MI:SS'),
		       source, external_id, version, state
		FROM consents ORDER BY recipient, type`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var rec, typ, st, date, src, ext, state string
		var version int
		if err := rows.Scan(&rec, &typ, &st, &date, &src, &ext, &version, &state); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{rec, typ, st, date, src, ext, state}, " ")+" v"+string(rune('0'+version)))
	}
	return out
}

func TestInstallIsIdempotentAndRefusesConflicts(t *testing.T) {
	t.Parallel()
	environ, db := installed(t)
	r := runCmd(t, environ, "install", "--brand-code", "B1", "--iys-code", "I1", "--skip-verify")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Fatalf("second install: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, environ, "install", "--brand-code", "B1", "--iys-code", "I2", "--skip-verify")
	if r.code != exitFatal || !strings.Contains(r.stderr, "İYS code is I1, not I2") {
		t.Fatalf("conflicting install: exit %d, %s", r.code, r.stderr)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM connectors").Scan(&n); err != nil || n != 1 {
		t.Fatalf("connectors = %d, %v", n, err)
	}
	r = runCmd(t, environ, "connectors", "--json")
	var out struct {
		Connectors []connectorJSON `json:"connectors"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Connectors) != 1 || out.Connectors[0].IYSCode != "I1" {
		t.Fatalf("connectors --json: %v %s", err, r.stdout)
	}
	first, err := time.Parse(time.RFC3339, out.Connectors[0].FirstSyncAt)
	if err != nil || !first.After(time.Now()) || first.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("first sync %s (%v): want the coming night", out.Connectors[0].FirstSyncAt, err)
	}
}

func TestImportTwiceChangesNothingAndOlderLoses(t *testing.T) {
	t.Parallel()
	environ, db := installed(t)
	t1 := time.Now().Add(-2 * time.Hour)
	t0 := t1.Add(-time.Hour)
	newer := writeFile(t, "newer.txt", "905331234562; SMS; RET; "+uploadTime(t1)+"; ext-new\n905551112233; web; ONAY; "+uploadTime(t1)+"\n")
	older := writeFile(t, "older.txt", "905331234562; SMS; ONAY; "+uploadTime(t0)+"; ext-old\n")

	r := runCmd(t, environ, "import", "--json", "--brand-code", "B1", "--channel", "sms", "--type", "MESAJ,ARAMA", newer)
	if r.code != 0 || decodeImport(t, r).Files[0].Imported != 2 {
		t.Fatalf("first import: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	want := records(t, db)
	if len(want) != 4 {
		t.Fatalf("records after the first import: %v, want 4 (2 lines × MESAJ,ARAMA)", want)
	}
	r = runCmd(t, environ, "import", "--json", "--brand-code", "B1", "--channel", "sms", "--type", "MESAJ,ARAMA", newer)
	if r.code != 0 || decodeImport(t, r).Files[0].Warnings.Superseded != 0 {
		t.Fatalf("second import: exit %d, %s", r.code, r.stdout)
	}
	if got := records(t, db); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the same file twice changed records:\n%v\n%v", want, got)
	}
	r = runCmd(t, environ, "import", "--json", "--brand-code", "B1", "--channel", "sms", "--type", "MESAJ,ARAMA", older)
	if r.code != 0 || decodeImport(t, r).Files[0].Warnings.Superseded != 1 {
		t.Fatalf("older import: exit %d, %s", r.code, r.stdout)
	}
	if got := records(t, db); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("an older consent replaced a newer one:\n%v\n%v", want, got)
	}
	if !strings.Contains(want[0], "+905331234562 ARAMA RET") || !strings.Contains(want[0], "HS_MESAJ ext-new pending v1") {
		t.Fatalf("stored values: %v", want)
	}
	var st statusJSON
	r = runCmd(t, environ, "status", "--json", "--brand-code", "B1")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Connectors[0].Records.Pending != 4 {
		t.Fatalf("status: %v %s", err, r.stdout)
	}
}

func TestImportNeedsAnInstalledConnectorWithTheChannel(t *testing.T) {
	t.Parallel()
	environ, _ := installed(t)
	f := writeFile(t, "a.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now())+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "NOPE", "--channel", "sms", f); r.code != exitFatal || !strings.Contains(r.stderr, "install") {
		t.Errorf("unknown brand: exit %d, %s", r.code, r.stderr)
	}
	if r := runCmd(t, environ, "install", "--brand-code", "B2", "--iys-code", "I1", "--channels", "EPOSTA", "--skip-verify"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCmd(t, environ, "import", "--brand-code", "B2", "--channel", "sms", f); r.code != exitFatal || !strings.Contains(r.stderr, "MESAJ") {
		t.Errorf("a channel the connector lacks: exit %d, %s", r.code, r.stderr)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	environ, db := installed(t)
	f := writeFile(t, "a.txt", "905331234562; SMS; ONAY; "+uploadTime(time.Now().Add(-time.Hour))+"; ext,1\n905331234563; SMS; RET; "+uploadTime(time.Now().Add(-time.Hour))+"\n")
	if r := runCmd(t, environ, "import", "--brand-code", "B1", "--channel", "sms", f); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if _, err := db.Exec(`UPDATE consents SET state = 'rejected', outcome = 'no_prior_record', iys_code = 'H175', iys_message = 'first record cannot be RET' WHERE status = 'RET'`); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, environ, "report", "--brand-code", "B1", "--state", "rejected")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "recipient,recipientType,type,status,consentDate") ||
		!strings.Contains(lines[1], "+905331234563,BIREYSEL,MESAJ,RET,") || !strings.Contains(lines[1], ",rejected,no_prior_record,H175,first record cannot be RET,0") {
		t.Fatalf("report --state rejected: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, environ, "report", "--brand-code", "B1", "--format", "json")
	var rows []reportRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 2 || rows[0].ExternalID != "ext,1" || rows[0].State != "pending" {
		t.Fatalf("report --format json: %v %s", err, r.stdout)
	}
	if r := runCmd(t, environ, "report", "--brand-code", "B1", "--outcome", "nope"); r.code != exitUsage {
		t.Fatalf("bad outcome: exit %d", r.code)
	}
}

// A brand's first file is copied straight into its records, unless a key
// comes twice: then it is read again and merged. Either way each bad line
// is reported once, and the later line wins.
func TestFirstFileWithAKeyTwiceReportsEachBadLineOnce(t *testing.T) {
	t.Parallel()
	environ, db := installed(t)
	t1 := time.Now().Add(-2 * time.Hour)
	t0 := t1.Add(-time.Hour)
	file := writeFile(t, "twice.txt", "905331234562; SMS; ONAY; "+uploadTime(t0)+"; ext-old\n"+
		"90533; SMS; ONAY; "+uploadTime(t0)+"\n"+
		"905551112233; web; ONAY; "+uploadTime(t1)+"\n"+
		"905331234562; SMS; RET; "+uploadTime(t1)+"; ext-new\n")
	r := runCmd(t, environ, "import", "--json", "--brand-code", "B1", "--channel", "sms", file)
	f := decodeImport(t, r).Files[0]
	if f.Lines != 4 || f.Valid != 3 || f.Rejected != 1 || len(f.Errors) != 1 || f.Imported != 3 || f.Warnings.Superseded != 1 {
		t.Fatalf("summary: %+v (exit %d)", f, r.code)
	}
	if n := strings.Count(r.stderr, "twice.txt:2:"); n != 1 {
		t.Fatalf("the bad line was reported %d times:\n%s", n, r.stderr)
	}
	got := records(t, db)
	if len(got) != 2 || !strings.Contains(got[0], "+905331234562 MESAJ RET") || !strings.Contains(got[0], "ext-new pending v1") {
		t.Fatalf("records: %v", got)
	}
}
