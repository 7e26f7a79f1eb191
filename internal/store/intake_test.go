package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestImportItemsVerdicts(t *testing.T) {
	bothMerges(t, testImportItemsVerdicts)
}

func testImportItemsVerdicts(t *testing.T, s *Store) {
	ctx := context.Background()
	c := install(t, s, "B")
	mail := "a" + "@" + "example.com"
	email := func(line int, st consent.Status, when string) ImportRow {
		return ImportRow{Line: line, Recipient: mail, RecipientType: consent.Bireysel, Type: consent.TypeEposta,
			Status: st, ConsentDate: date(t, when), Source: consent.SourceWeb}
	}
	// Stored first: phoneA ONAY at 14:00, phoneB RET at 14:00.
	importRows(t, s, c.ID,
		sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"),
		sms(t, 2, phoneB, consent.StatusRet, "15.05.2025 14:00:00"))

	rows := []ImportRow{
		sms(t, 1, phoneA, consent.StatusRet, "15.05.2025 13:00:00"),           // older than stored: superseded
		sms(t, 3, phoneB, consent.StatusRet, "15.05.2025 14:00:00"),           // identical to stored: unchanged
		email(4, consent.StatusOnay, "15.05.2025 10:00:00"),                   // new, but a later item is newer: superseded
		email(6, consent.StatusRet, "15.05.2025 11:00:00"),                    // new and newest: accepted
		sms(t, 7, "+905331234564", consent.StatusOnay, "15.05.2025 09:00:00"), // new: accepted, at equal time...
		sms(t, 8, "+905331234564", consent.StatusRet, "15.05.2025 09:00:00"),  // ...the later item wins
		sms(t, 9, phoneA, consent.StatusRet, "15.05.2025 14:00:00"),           // same time as stored, other status: accepted
	}
	rows[4].Line, rows[5].Line = 7, 8
	chans := []IntakeChannel{{Channel: "email", Valid: 2, Rejected: 1}, {Channel: "sms", Valid: 5, Rejected: 0}}
	res, err := s.ImportItems(ctx, c.ID, "api:test", "req-1", rows, chans)
	if err != nil {
		t.Fatal(err)
	}
	want := []Verdict{VerdictSuperseded, VerdictUnchanged, VerdictSuperseded, VerdictAccepted,
		VerdictSuperseded, VerdictAccepted, VerdictAccepted}
	if !slices.Equal(res.Verdicts, want) {
		t.Fatalf("verdicts %v, want %v", res.Verdicts, want)
	}
	if w := (ImportResult{Rows: 7, Inserted: 2, Updated: 1, Unchanged: 1, SupersededLines: 3}); res.ImportResult != w {
		t.Errorf("counts %+v, want %+v", res.ImportResult, w)
	}
	recs := records(t, s, c.ID)
	if r := recs[phoneA+"/MESAJ"]; r.Status != consent.StatusRet || r.Version != 2 {
		t.Errorf("phoneA: %+v", r)
	}
	if r := recs[mail+"/EPOSTA"]; r.Status != consent.StatusRet || r.ConsentDate.String() != "2025-05-15 11:00:00" {
		t.Errorf("email: %+v", r)
	}
	if r := recs["+905331234564/MESAJ"]; r.Status != consent.StatusRet {
		t.Errorf("tie: %+v", r)
	}
	// One audit row per channel, in the request's transaction.
	var audit []struct {
		Channel    string `db:"channel"`
		Lines      int    `db:"lines"`
		Valid      int    `db:"valid"`
		Rejected   int    `db:"rejected"`
		Superseded int    `db:"superseded"`
		Inserted   int    `db:"inserted"`
		Updated    int    `db:"updated"`
		Unchanged  int    `db:"unchanged"`
	}
	if err := s.db.Select(&audit, `SELECT channel, lines, valid, rejected, superseded, inserted, updated, unchanged
		FROM imports WHERE path = 'api:test' ORDER BY channel`); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%+v", audit); got != "[{Channel:email Lines:3 Valid:2 Rejected:1 Superseded:1 Inserted:1 Updated:0 Unchanged:0} "+
		"{Channel:sms Lines:5 Valid:5 Rejected:0 Superseded:2 Inserted:1 Updated:1 Unchanged:1}]" {
		t.Errorf("audit rows %s", got)
	}

	// The same request again changes nothing.
	res, err = s.ImportItems(ctx, c.ID, "api:test", "req-1", rows, chans)
	if err != nil {
		t.Fatal(err)
	}
	want = []Verdict{VerdictSuperseded, VerdictUnchanged, VerdictSuperseded, VerdictUnchanged,
		VerdictSuperseded, VerdictUnchanged, VerdictUnchanged}
	if !slices.Equal(res.Verdicts, want) {
		t.Fatalf("second time: verdicts %v, want %v", res.Verdicts, want)
	}
	if res.Inserted+res.Updated != 0 {
		t.Errorf("second time: %+v", res.ImportResult)
	}
	if got := records(t, s, c.ID)[phoneA+"/MESAJ"].Version; got != 2 {
		t.Errorf("second time: phoneA version %d", got)
	}
}

func TestImportItemsRefusesBadCounts(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	rows := []ImportRow{sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00")}
	for _, chans := range [][]IntakeChannel{
		nil,
		{{Channel: "sms", Valid: 2}},
		{{Channel: "api", Valid: 1}},
		{{Channel: "sms", Valid: 1}, {Channel: "sms", Valid: 1}},
	} {
		if _, err := s.ImportItems(context.Background(), c.ID, "api:x", "req-1", rows, chans); err == nil {
			t.Errorf("%+v: accepted", chans)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM consents"); n != 0 {
		t.Errorf("%d records written", n)
	}
	if _, err := s.ImportItems(context.Background(), c.ID+100, "api:x", "req-1", rows, []IntakeChannel{{Channel: "sms", Valid: 1}}); !errors.Is(err, ErrNoConnector) {
		t.Errorf("unknown connector: %v", err)
	}
}

// TestImportItemsConcurrent sends overlapping requests at once: every
// verdict must be true of what was written (an accepted item is a write of
// its record, and the newest item is always accepted).
func TestImportItemsConcurrent(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	const writers, keys = 4, 200
	results := make([]IntakeResult, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rows []ImportRow
			for k := 0; k < keys; k++ {
				// Writer w's consent for key k is newest when (k+w) % writers == 0.
				when := fmt.Sprintf("15.05.2025 1%d:00:00", (k+w)%writers)
				rows = append(rows, sms(t, k+1, fmt.Sprintf("+9053312%05d", k), consent.StatusOnay, when))
			}
			res, err := s.ImportItems(context.Background(), c.ID, "api:w", "req-1", rows, []IntakeChannel{{Channel: "sms", Valid: keys}})
			results[w] = res
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	recs := records(t, s, c.ID)
	for k := 0; k < keys; k++ {
		r := recs[fmt.Sprintf("+9053312%05d", k)+"/MESAJ"]
		if r.ConsentDate.String() != fmt.Sprintf("2025-05-15 1%d:00:00", writers-1) {
			t.Fatalf("key %d: %+v", k, r)
		}
		// The writer holding the newest consent must have been told
		// accepted; and each accepted verdict is one write of the record,
		// so that their number is its version.
		newest := (writers - 1 - k%writers + writers) % writers
		if v := results[newest].Verdicts[k]; v != VerdictAccepted {
			t.Fatalf("key %d: the newest writer %d was told %s", k, newest, v)
		}
		accepted := 0
		for w := range results {
			if results[w].Verdicts[k] == VerdictAccepted {
				accepted++
			}
		}
		if int64(accepted) != r.Version {
			t.Fatalf("key %d: %d writers were told accepted, but the record was written %d times", k, accepted, r.Version)
		}
	}
}
