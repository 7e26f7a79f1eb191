package history

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/store"
)

// Each kind of event is told in words that name what a regulator asks:
// where a value came from, what İYS answered and why.
func TestEventsInWords(t *testing.T) {
	at := time.Date(2025, 5, 15, 11, 0, 0, 0, time.UTC)
	ev := func(kind, origin, state string, f func(*store.Event)) store.RecipientEvent {
		e := store.Event{At: at, Kind: kind, Origin: origin, Status: "ONAY", ConsentDate: at, Source: "HS_WEB",
			RecipientType: "BIREYSEL", Version: 1, State: state}
		if f != nil {
			f(&e)
		}
		return store.RecipientEvent{Type: "MESAJ", Event: e}
	}
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	story := Of("+905331234562", []store.RecipientEvent{
		ev("file", "file:my:file.txt:12", "pending", func(e *store.Event) { e.ImportID = sql.NullInt64{Int64: 3, Valid: true} }),
		ev("api", "api:crm:4", "pending", func(e *store.Event) { e.RequestID = str("R1"); e.ExternalID = "c-1" }),
		ev("source", "source:600001:c-1", "pending", nil),
		ev("verdict", "file:my:file.txt:12", "rejected", func(e *store.Event) {
			e.Outcome, e.IYSCode, e.IYSMessage = str("no_prior_record"), str("H175"), str("ilk kayıt RET olamaz")
		}),
		ev("verdict", "file:my:file.txt:12", "pending", func(e *store.Event) { e.IYSCode = str("H500") }),
		ev("iys", "iys:IYS_MOBIL", "synced", func(e *store.Event) {
			e.Status, e.Source, e.TransactionID = "RET", "IYS_MOBIL", str("T9")
			e.CreationDate = sql.NullTime{Time: at, Valid: true}
		}),
		ev("file", "file:old.txt:1", "synced", func(e *store.Event) { e.Outcome = str("superseded") }),
	})
	want := []string{
		"imported from file my:file.txt, line 12 (import 3): ONAY given 2025-05-15 14:00:00, source HS_WEB",
		"received by the intake API from token crm, request R1, item 4: ONAY given 2025-05-15 14:00:00, source HS_WEB, external id c-1",
		"read from the user table of 600001, user c-1",
		"İYS refused it (no_prior_record): H175 ilk kayıt RET olamaz",
		"to be sent again: H500",
		"pulled from İYS's changes: RET given 2025-05-15 14:00:00, source IYS_MOBIL, İYS transaction T9, recorded by İYS 2025-05-15 14:00:00",
		"; not applied: the record holds a newer consent",
	}
	for i, w := range want {
		if d := story.Events[i].Description; !strings.Contains(d, w) {
			t.Errorf("event %d: %q, want it to hold %q", i, d, w)
		}
	}
	if story.Events[0].At != "2025-05-15T14:00:00+03:00" || story.Events[5].CreationDate != "2025-05-15 14:00:00" {
		t.Errorf("times: %q %q", story.Events[0].At, story.Events[5].CreationDate)
	}
	if !strings.HasPrefix(story.Text(), "History of +905331234562, oldest first:\n") || Of("x", nil).Text() != "No events of x.\n" {
		t.Errorf("text:\n%s", story.Text())
	}
}

// A recipient is read as the files and the intake read them.
func TestRecipient(t *testing.T) {
	for in, want := range map[string]string{"905331234562": "+905331234562", "+905331234562": "+905331234562",
		" Ali@Example.COM ": "ali@example.com"} {
		if got, err := Recipient(in); err != nil || got != want {
			t.Errorf("Recipient(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Recipient("not a number"); err == nil {
		t.Error("a recipient that is neither: no error")
	}
}
