package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// The staging COPY writes COPY's text format itself: every value must come
// out of the database exactly as it went in, whatever its bytes, through
// the file import, the intake and the user-table source's spool, and the
// hash made in Go of each new record's first event must be the one verify
// computes in SQL.
func TestStagingCopyKeepsValuesExactly(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	c := install(t, s, "B")
	odd := []string{`back\slash`, "tab\there", "new\nline", "cr\rhere", `\N`, `\\x00`, "ğüşİöç ✓", ""}
	at := time.Date(2025, 5, 15, 11, 0, 0, 0, time.UTC)
	mk := func(i int, phone string) ImportRow {
		return ImportRow{Line: i + 1, Recipient: phone, RecipientType: consent.Bireysel, Type: consent.TypeMesaj,
			Status: consent.StatusOnay, ConsentDate: consent.NewDate(at.Add(time.Duration(i) * time.Second)),
			Source: consent.SourceMesaj, ExternalID: odd[i%len(odd)]}
	}
	var file, items, users []ImportRow
	for i := range odd {
		file = append(file, mk(i, "+90533100000"+string(rune('0'+i))))
		items = append(items, mk(i, "+90533200000"+string(rune('0'+i))))
		users = append(users, mk(i, "+90533300000"+string(rune('0'+i))))
	}
	meta := metaFor(file...)
	meta.Path = "/up/we\\ird\tname.txt" // a file's name is in each record's origin
	if _, err := s.ImportFile(ctx, c.ID, fixed(meta), fromSlice(file...), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportItems(ctx, c.ID, "api:crm", "req-1", items, []IntakeChannel{{Channel: "sms", Valid: len(items)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportSource(ctx, c.ID, "source:B", func() []IntakeChannel {
		return []IntakeChannel{{Channel: "sms", Valid: len(users)}}
	}, fromSlice(users...)); err != nil {
		t.Fatal(err)
	}
	got := records(t, s, c.ID)
	for _, rows := range [][]ImportRow{file, items, users} {
		for _, r := range rows {
			rec, ok := got[r.Recipient+"/MESAJ"]
			switch {
			case !ok:
				t.Errorf("%s: not stored", r.Recipient)
			case rec.ExternalID != r.ExternalID:
				t.Errorf("%s: external id %q, want %q", r.Recipient, rec.ExternalID, r.ExternalID)
			case !rec.ConsentDate.Equal(r.ConsentDate):
				t.Errorf("%s: consent date %v, want %v", r.Recipient, rec.ConsentDate.Time(), r.ConsentDate.Time())
			}
		}
	}
	if n := count(t, s, `SELECT count(*) FROM consents WHERE origin LIKE E'file:we\\\\ird\tname.txt:%'`); n != len(file) {
		t.Errorf("%d records name the file as their origin, want %d", n, len(file))
	}
	v, err := s.VerifyChains(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Records != 3*len(odd) || len(v.Broken) != 0 {
		t.Fatalf("verify: %d records, broken %+v; want %d, none", v.Records, v.Broken, 3*len(odd))
	}
}

// The fast path's INSERT takes its rows in the order the merge's window
// sorted them, key first, and has no sort of its own: writers lock in key
// order (see retry.go), so that none deadlocks another. The ids, taken in
// insertion order, show it: a file in reverse key order, with repeats, gets
// ids rising with the key.
func TestFreshRecordsAreInsertedInKeyOrder(t *testing.T) {
	s, _ := newStore(t)
	c := install(t, s, "B")
	var rows []ImportRow
	for i := 0; i < 3000; i++ {
		phone := fmt.Sprintf("+90533%07d", 9999999-(i%2000)*4567) // descending, then again
		rows = append(rows, sms(t, i+1, phone, consent.StatusOnay, "15.05.2025 14:00:00"))
	}
	if res := importRows(t, s, c.ID, rows...); res.Inserted != 2000 {
		t.Fatalf("inserted %d, want 2000", res.Inserted)
	}
	out := count(t, s, `SELECT count(*) FROM (
		SELECT id > lag(id) OVER (ORDER BY recipient, recipient_type, type) AS rising
		FROM consents WHERE connector_id = $1) x
	WHERE NOT rising`, c.ID)
	if out != 0 {
		t.Fatalf("%d records were inserted out of key order", out)
	}
}
