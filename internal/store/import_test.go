package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

const (
	phoneA = "+905331234562"
	phoneB = "+905331234563"
)

func TestImportNewestWinsAcrossImports(t *testing.T) {
	bothMerges(t, testImportNewestWinsAcrossImports)
}

func testImportNewestWinsAcrossImports(t *testing.T, s *Store) {
	c := install(t, s, "B")

	res := importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"))
	if want := (ImportResult{Rows: 1, Inserted: 1}); res != want {
		t.Fatalf("first import = %+v, want %+v", res, want)
	}
	// An older consent for the same record loses and is counted.
	res = importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusRet, "14.05.2025 09:00:00"))
	if want := (ImportResult{Rows: 1, Unchanged: 1, SupersededLines: 1}); res != want {
		t.Fatalf("older import = %+v, want %+v", res, want)
	}
	r := records(t, s, c.ID)[phoneA+"/MESAJ"]
	if r.Status != consent.StatusOnay || r.Version != 1 || r.ConsentDate.String() != "2025-05-15 14:00:00" {
		t.Fatalf("older consent changed the record: %+v", r)
	}
	// A newer one wins.
	res = importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusRet, "16.05.2025 09:00:00"))
	if want := (ImportResult{Rows: 1, Updated: 1}); res != want {
		t.Fatalf("newer import = %+v, want %+v", res, want)
	}
	r = records(t, s, c.ID)[phoneA+"/MESAJ"]
	if r.Status != consent.StatusRet || r.Version != 2 || r.State != consent.StatePending {
		t.Fatalf("newer consent not stored: %+v", r)
	}
}

func TestImportWithinFileNewestThenLaterLine(t *testing.T) {
	bothMerges(t, testImportWithinFileNewestThenLaterLine)
}

func testImportWithinFileNewestThenLaterLine(t *testing.T, s *Store) {
	c := install(t, s, "B")
	res := importRows(t, s, c.ID,
		sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"), // loses to line 3 (newer)
		sms(t, 2, phoneB, consent.StatusOnay, "15.05.2025 14:00:00"), // loses to line 4 (same time, later)
		sms(t, 3, phoneA, consent.StatusRet, "15.05.2025 15:00:00"),
		sms(t, 4, phoneB, consent.StatusRet, "15.05.2025 14:00:00"),
		sms(t, 5, phoneA, consent.StatusOnay, "15.05.2025 13:00:00"), // later line, older: loses
	)
	if want := (ImportResult{Rows: 5, Inserted: 2, SupersededLines: 3}); res != want {
		t.Fatalf("import = %+v, want %+v", res, want)
	}
	recs := records(t, s, c.ID)
	if recs[phoneA+"/MESAJ"].Status != consent.StatusRet || recs[phoneB+"/MESAJ"].Status != consent.StatusRet {
		t.Fatalf("wrong winners: %+v", recs)
	}
}

func TestImportEqualTimestampLaterFileWins(t *testing.T) {
	bothMerges(t, testImportEqualTimestampLaterFileWins)
}

func testImportEqualTimestampLaterFileWins(t *testing.T, s *Store) {
	c := install(t, s, "B")
	importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"))
	res := importRows(t, s, c.ID, sms(t, 7, phoneA, consent.StatusRet, "15.05.2025 14:00:00"))
	if want := (ImportResult{Rows: 1, Updated: 1}); res != want {
		t.Fatalf("import = %+v, want %+v", res, want)
	}
	if r := records(t, s, c.ID)[phoneA+"/MESAJ"]; r.Status != consent.StatusRet || r.Version != 2 {
		t.Fatalf("later file did not win the tie: %+v", r)
	}
	// Same time, only the external id differs: that is a change too.
	row := sms(t, 1, phoneA, consent.StatusRet, "15.05.2025 14:00:00")
	row.ExternalID = "user-9"
	if res := importRows(t, s, c.ID, row); res.Updated != 1 {
		t.Fatalf("external id change not stored: %+v", res)
	}
}

func TestImportIdenticalReimportChangesNothing(t *testing.T) {
	bothMerges(t, testImportIdenticalReimportChangesNothing)
}

func testImportIdenticalReimportChangesNothing(t *testing.T, s *Store) {
	c := install(t, s, "B")
	var rows []ImportRow
	for i := range 50 {
		r := sms(t, i+1, fmt.Sprintf("+9053312345%02d", i), consent.StatusOnay, "15.05.2025 14:00:00")
		r.ExternalID = fmt.Sprintf("u%d", i)
		rows = append(rows, r)
	}
	if res := importRows(t, s, c.ID, rows...); res.Inserted != 50 {
		t.Fatalf("first import = %+v", res)
	}
	type snap struct {
		ID        int64
		Version   int64
		UpdatedAt string `db:"updated_at"`
		Xmin      string
	}
	var before, after []snap
	q := "SELECT id, version, updated_at::text, xmin::text FROM consents ORDER BY id"
	if err := s.db.Select(&before, q); err != nil {
		t.Fatal(err)
	}
	res := importRows(t, s, c.ID, rows...)
	if want := (ImportResult{Rows: 50, Unchanged: 50}); res != want {
		t.Fatalf("re-import = %+v, want %+v", res, want)
	}
	if err := s.db.Select(&after, q); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("re-import wrote rows (xmin/version/updated_at changed):\nbefore %v\nafter  %v", before, after)
	}
	if n := count(t, s, "SELECT count(*) FROM imports WHERE connector_id = $1", c.ID); n != 2 {
		t.Fatalf("%d imports rows, want one per file", n)
	}
}

// TestImportNewerResetsAnyState: a newer consent makes the record pending
// again, with a new version and no trace of the last send.
func TestImportNewerResetsAnyState(t *testing.T) { bothMerges(t, testImportNewerResetsAnyState) }

func testImportNewerResetsAnyState(t *testing.T, s *Store) {
	c := install(t, s, "B")
	states := []struct{ state, outcome string }{
		{"in_flight", ""}, {"synced", "accepted"}, {"rejected", "too_old"}, {"failed", ""}, {"pending", ""},
	}
	var first []ImportRow
	for i := range states {
		first = append(first, sms(t, i+1, fmt.Sprintf("+90533123450%d", i), consent.StatusOnay, "15.05.2025 14:00:00"))
	}
	importRows(t, s, c.ID, first...)
	// batch_id references batches (0002): the records' last batch is batch 7.
	execSQL(t, s, `INSERT INTO runs (id, connector_id, trigger) VALUES (7, $1, 'run-now')`, c.ID)
	execSQL(t, s, `INSERT INTO batches (id, connector_id, run_id, size) VALUES (7, $1, 7, 5)`, c.ID)
	for i, st := range states {
		execSQL(t, s, `UPDATE consents SET state = $1, outcome = NULLIF($2, ''), iys_code = 'H174', iys_message = 'm',
			transaction_id = 'tx', batch_id = 7, attempts = 3, synced_at = now(), version = 5
			WHERE recipient = $3`, st.state, st.outcome, first[i].Recipient)
	}
	// An older consent leaves every one of them as it is.
	var older []ImportRow
	for i := range states {
		older = append(older, sms(t, i+1, first[i].Recipient, consent.StatusRet, "14.05.2025 14:00:00"))
	}
	if res := importRows(t, s, c.ID, older...); res.Unchanged != len(states) || res.SupersededLines != len(states) {
		t.Fatalf("older import = %+v", res)
	}
	for _, r := range records(t, s, c.ID) {
		if r.Version != 5 || r.BatchID.Int64 != 7 {
			t.Fatalf("older consent touched %s record: %+v", r.State, r)
		}
	}
	var newer []ImportRow
	for i := range states {
		newer = append(newer, sms(t, i+1, first[i].Recipient, consent.StatusRet, "16.05.2025 14:00:00"))
	}
	if res := importRows(t, s, c.ID, newer...); res.Updated != len(states) {
		t.Fatalf("newer import = %+v", res)
	}
	for _, r := range records(t, s, c.ID) {
		if r.State != consent.StatePending || r.Version != 6 || r.Outcome.Valid || r.IYSCode.Valid ||
			r.IYSMessage.Valid || r.TransactionID.Valid || r.BatchID.Valid || r.Attempts != 0 || r.SyncedAt.Valid ||
			r.Status != consent.StatusRet {
			t.Fatalf("record not reset to pending with version 6: %+v", r)
		}
	}
}

// TestImportTwoTypesPerLine: an SMS line imported as MESAJ,ARAMA gives two
// rows but counts once.
func TestImportTwoTypesPerLine(t *testing.T) { bothMerges(t, testImportTwoTypesPerLine) }

func testImportTwoTypesPerLine(t *testing.T, s *Store) {
	c := install(t, s, "B")
	both := func(line int, phone string, st consent.Status, when string) []ImportRow {
		m := sms(t, line, phone, st, when)
		a := m
		a.Type = consent.TypeArama
		return []ImportRow{m, a}
	}
	var rows []ImportRow
	rows = append(rows, both(1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00")...)
	rows = append(rows, both(2, phoneA, consent.StatusRet, "15.05.2025 15:00:00")...)
	res := importRows(t, s, c.ID, rows...)
	if want := (ImportResult{Rows: 4, Inserted: 2, SupersededLines: 1}); res != want {
		t.Fatalf("import = %+v, want %+v", res, want)
	}
	// A line losing on one type only (ARAMA is newer in the store) still counts once.
	execSQL(t, s, "UPDATE consents SET consent_date = '2025-05-20 10:00:00+03' WHERE type = 'ARAMA'")
	res = importRows(t, s, c.ID, both(1, phoneA, consent.StatusOnay, "16.05.2025 14:00:00")...)
	if want := (ImportResult{Rows: 2, Updated: 1, Unchanged: 1, SupersededLines: 1}); res != want {
		t.Fatalf("import = %+v, want %+v", res, want)
	}
}

// TestImportLineEqualToStoredIsNotSuperseded: a line repeating the stored
// record loses to a newer line of the file, but is not counted.
func TestImportLineEqualToStoredIsNotSuperseded(t *testing.T) {
	bothMerges(t, testImportLineEqualToStoredIsNotSuperseded)
}

func testImportLineEqualToStoredIsNotSuperseded(t *testing.T, s *Store) {
	c := install(t, s, "B")
	importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"))
	res := importRows(t, s, c.ID,
		sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"),
		sms(t, 2, phoneA, consent.StatusRet, "16.05.2025 14:00:00"))
	if want := (ImportResult{Rows: 2, Updated: 1}); res != want {
		t.Fatalf("import = %+v, want %+v", res, want)
	}
}

func TestImportSourceErrorWritesNothing(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	boom := errors.New("disk on fire")
	src := func(emit func(ImportRow) error) error {
		for i := range 10000 { // past lib/pq's 64 KiB buffer: some rows reached the server
			if err := emit(sms(t, i+1, fmt.Sprintf("+90533%07d", i), consent.StatusOnay, "15.05.2025 14:00:00")); err != nil {
				return err
			}
		}
		return boom
	}
	meta := ImportMeta{Path: "x.txt", Channel: "sms", Lines: 10000, Valid: 10000}
	if _, err := s.ImportFile(context.Background(), c.ID, fixed(meta), src, nil); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the source's error", err)
	}
	// A source that ignores emit's error still fails the import.
	bad := sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00")
	bad.Type = "FAX"
	sloppy := func(emit func(ImportRow) error) error {
		emit(sms(t, 1, phoneB, consent.StatusOnay, "15.05.2025 14:00:00")) //nolint:errcheck // the point
		emit(bad)                                                          //nolint:errcheck
		return nil
	}
	if _, err := s.ImportFile(context.Background(), c.ID, fixed(metaFor(bad)), sloppy, nil); err == nil || !strings.Contains(err.Error(), "FAX") {
		t.Fatalf("err = %v, want the bad row's error", err)
	}
	if n := count(t, s, "SELECT count(*) FROM consents") + count(t, s, "SELECT count(*) FROM imports"); n != 0 {
		t.Fatalf("a failed import left %d rows", n)
	}
	// The connection is usable again: the staging table went with the transaction.
	if res := importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"),
		sms(t, 2, phoneB, consent.StatusOnay, "15.05.2025 14:00:00")); res.Inserted != 2 {
		t.Fatalf("import after failures = %+v", res)
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	mesajOnly, _, err := s.InstallConnector(context.Background(), Connector{BrandCode: "M", IYSCode: "2",
		Channels: []consent.Type{consent.TypeMesaj}, FirstSyncAt: c.FirstSyncAt})
	if err != nil {
		t.Fatal(err)
	}
	ok := sms(t, 2, phoneA, consent.StatusOnay, "15.05.2025 14:00:00")
	email := ok
	email.Type, email.Recipient = consent.TypeEposta, "u@example.com"
	zeroDate := ok
	zeroDate.ConsentDate = consent.Date{}
	red := ok
	red.Status = "RED"
	cases := map[string]struct {
		conn int64
		meta ImportMeta
		rows []ImportRow
	}{
		"lines do not add up": {c.ID, ImportMeta{Lines: 3, Valid: 1}, []ImportRow{ok}},
		"valid is not lines":  {c.ID, ImportMeta{Lines: 2, Valid: 2}, []ImportRow{ok}},
		"out of order":        {c.ID, metaFor(ok, ok), []ImportRow{ok, sms(t, 1, phoneB, consent.StatusOnay, "15.05.2025 14:00:00")}},
		"channel":             {mesajOnly.ID, metaFor(email), []ImportRow{email}},
		"no date":             {c.ID, metaFor(zeroDate), []ImportRow{zeroDate}},
		"status":              {c.ID, metaFor(red), []ImportRow{red}},
		"audit channel":       {c.ID, ImportMeta{Channel: "fax", Lines: 1, Valid: 1}, []ImportRow{ok}},
	}
	for name, tc := range cases {
		if tc.meta.Channel == "" {
			tc.meta.Channel = "sms"
		}
		if _, err := s.ImportFile(context.Background(), tc.conn, fixed(tc.meta), fromSlice(tc.rows...), nil); err == nil {
			t.Errorf("%s: import succeeded", name)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM consents") + count(t, s, "SELECT count(*) FROM imports"); n != 0 {
		t.Fatalf("refused imports left %d rows", n)
	}
}

func TestImportAuditRow(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	rows := []ImportRow{
		sms(t, 2, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"),
		sms(t, 4, phoneA, consent.StatusRet, "15.05.2025 15:00:00"),
	}
	meta := ImportMeta{Path: "/in/sms.csv", Channel: "sms", Lines: 5, Blank: 1, Valid: 2, Rejected: 2}
	if _, err := s.ImportFile(context.Background(), c.ID, fixed(meta), fromSlice(rows...), nil); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Path                                      string
		Channel                                   string
		Lines, Blank, Valid, Rejected, Superseded int
		Rows, Inserted, Updated, Unchanged        int
	}
	if err := s.db.Get(&got, `SELECT path, channel, lines, blank, valid, rejected, superseded, rows, inserted, updated, unchanged
		FROM imports WHERE connector_id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	want := "{/in/sms.csv sms 5 1 2 2 1 2 1 0 0}"
	if fmt.Sprint(got) != want {
		t.Fatalf("imports row = %v, want %s", got, want)
	}
}

func TestCountsAndConsentsOf(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	other := install(t, s, "O")
	var rows []ImportRow
	for i := range 6 {
		rows = append(rows, sms(t, i+1, fmt.Sprintf("+90533123450%d", i), consent.StatusOnay, "15.05.2025 14:00:00"))
	}
	importRows(t, s, c.ID, rows...)
	importRows(t, s, other.ID, rows[0])
	execSQL(t, s, "UPDATE consents SET state = 'synced', outcome = 'accepted' WHERE connector_id = $1 AND recipient IN ($2, $3)",
		c.ID, rows[0].Recipient, rows[1].Recipient)
	execSQL(t, s, "UPDATE consents SET state = 'rejected', outcome = 'too_old' WHERE connector_id = $1 AND recipient = $2",
		c.ID, rows[2].Recipient)
	execSQL(t, s, "UPDATE consents SET state = 'in_flight' WHERE connector_id = $1 AND recipient = $2", c.ID, rows[3].Recipient)

	states, outcomes, err := s.Counts(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantStates := StateCounts{"pending": 2, "in_flight": 1, "synced": 2, "rejected": 1, "failed": 0}
	if fmt.Sprint(states) != fmt.Sprint(wantStates) {
		t.Errorf("states = %v, want %v", states, wantStates)
	}
	if outcomes[consent.OutcomeAccepted] != 2 || outcomes[consent.OutcomeTooOld] != 1 || len(outcomes) != len(consent.Outcomes) {
		t.Errorf("outcomes = %v", outcomes)
	}

	var got []string
	err = s.ConsentsOf(context.Background(), c.ID, Filter{State: consent.StateSynced}, func(r Record) error {
		got = append(got, r.Recipient+":"+string(r.Outcome.V))
		return nil
	})
	if err != nil || strings.Join(got, ",") != rows[0].Recipient+":accepted,"+rows[1].Recipient+":accepted" {
		t.Fatalf("synced records = %v, %v", got, err)
	}
	n := 0
	err = s.ConsentsOf(context.Background(), c.ID, Filter{Outcome: consent.OutcomeTooOld}, func(Record) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("too_old records = %d, %v", n, err)
	}
	stop := errors.New("enough")
	if err := s.ConsentsOf(context.Background(), c.ID, Filter{}, func(Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error not returned: %v", err)
	}
}

// TestOutcomeMustMatchState: the schema refuses a verdict docs/cli.md does
// not allow for the state.
func TestOutcomeMustMatchState(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"))
	for _, bad := range [][2]string{{"synced", "too_old"}, {"rejected", "accepted"}, {"pending", "accepted"}, {"synced", ""}} {
		if _, err := s.db.Exec("UPDATE consents SET state = $1, outcome = NULLIF($2, '')", bad[0], bad[1]); err == nil {
			t.Errorf("state %s with outcome %q accepted", bad[0], bad[1])
		}
	}
}

// TestImportMetaAfterRows: a streaming reader knows its counts only at the
// end, so ImportFile asks for them after the rows.
func TestImportMetaAfterRows(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	var lines, blank int
	src := func(emit func(ImportRow) error) error {
		for i := range 3 {
			lines++
			if i == 1 {
				blank++
				continue
			}
			if err := emit(sms(t, lines, fmt.Sprintf("+90533123450%d", i), consent.StatusOnay, "15.05.2025 14:00:00")); err != nil {
				return err
			}
		}
		return nil
	}
	meta := func() ImportMeta {
		return ImportMeta{Path: "stream.txt", Channel: "sms", Lines: lines, Blank: blank, Valid: lines - blank}
	}
	res, err := s.ImportFile(context.Background(), c.ID, meta, src, nil)
	if err != nil || res.Inserted != 2 {
		t.Fatalf("import = %+v, %v", res, err)
	}
	if n := count(t, s, "SELECT lines FROM imports WHERE path = 'stream.txt'"); n != 3 {
		t.Fatalf("audit row has %d lines, want 3", n)
	}
}
