package pull

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iys-sync/iys-sync/internal/consent"
)

const goodEntry = `{"consentDate":"2025-05-15 14:23:00","creationDate":"2025-05-15 15:00:01","source":"IYS_MOBIL",` +
	`"recipient":"+905331234562","recipientType":"BIREYSEL","status":"RET","type":"MESAJ","transactionId":"tx1"}`

func TestReadEntry(t *testing.T) {
	t.Parallel()
	edit := func(from, to string) string { return strings.Replace(goodEntry, from, to, 1) }
	for _, tt := range []struct{ entry, reason string }{
		{goodEntry, ""},
		{edit(`"IYS_MOBIL"`, `"IYS_YENI_KANAL"`), ""}, // an unknown source is İYS's to make
		{edit(`"IYS_MOBIL"`, `"SOMETHING_ELSE"`), ""},
		{edit(`"+905331234562"`, `"905331234562"`), ""},
		{edit(`,"transactionId":"tx1"`, ``), ""},
		{edit(`"2025-05-15 15:00:01"`, `"yesterday"`), ""}, // creationDate only informs
		{edit(`"type":"MESAJ"`, `"type":"EPOSTA"`), "recipient:"},
		{edit("2025-05-15 14:23:00", "15.05.2025 14:23:00"), "consentDate: not in İYS's layout"},
		{edit("2025-05-15 14:23:00", "2025-05-15T14:23:00Z"), "consentDate: not in İYS's layout"},
		{edit(`"consentDate":"2025-05-15 14:23:00",`, ``), "consentDate: missing"},
		{edit(`"recipient":"+905331234562",`, ``), "recipient: missing"},
		{edit(`"type":"MESAJ"`, `"type":"FAKS"`), "type: unknown"},
		{edit(`"status":"RET"`, `"status":"RED"`), "status: unknown"},
		{edit(`"recipientType":"BIREYSEL"`, `"recipientType":"KURUMSAL"`), "recipientType: unknown"},
		{edit(`"+905331234562"`, `"05331234562"`), "recipient: starts with 0"},
		{edit(`"tx1"`, `"tx\u0000"`), "transactionId: holds control characters"},
		{`42`, "not a JSON object"},
	} {
		ch, err := readEntry([]byte(tt.entry))
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.entry, err)
			} else if ch.Recipient == "" || ch.ConsentDate.IsZero() {
				t.Errorf("%s: %+v", tt.entry, ch)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: %v, want %q", tt.entry, err, tt.reason)
		}
	}
}

// FuzzReadEntry: whatever İYS sends as an entry, reading it never panics,
// and it ends either as a change our records can hold or with a reason that
// names what is wrong and never repeats the recipient.
//
//	go test -run '^$' -fuzz FuzzReadEntry -fuzztime 10m ./internal/pull
func FuzzReadEntry(f *testing.F) {
	for _, s := range []string{goodEntry, `{}`, `null`, `[]`, `"x"`, `{"type":"EPOSTA","recipient":"U@Example.com"}`,
		strings.Replace(goodEntry, "2025-05-15 14:23:00", "2025-02-30 14:23:00", 1),
		strings.Replace(goodEntry, `"type":"MESAJ"`, `"type":"EPOSTA"`, 1),
		strings.Replace(goodEntry, `"+905331234562"`, `"ayse@example.com"`, 1),
		strings.Replace(goodEntry, `"IYS_MOBIL"`, `"\u0000"`, 1),
		strings.Replace(goodEntry, `"tx1"`, `12345678901234567890`, 1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ch, err := readEntry(raw)
		if err != nil {
			reason := err.Error()
			if reason == "" || !utf8.ValidString(reason) {
				t.Fatalf("reason %q", reason)
			}
			// The examples the reasons give are no leak.
			const examples = "local@domain.tld e.g. 905331234562"
			var e struct{ Recipient any }
			if json.Unmarshal(raw, &e) == nil {
				if r, ok := e.Recipient.(string); ok && len(r) >= 6 && strings.ContainsAny(r, "0123456789@") &&
					strings.Contains(reason, r) && !strings.Contains(examples, r) {
					t.Fatalf("the reason %q repeats the recipient", reason)
				}
			}
			return
		}
		if _, err := consent.ParseType(string(ch.Type)); err != nil {
			t.Fatalf("applied with type %q", ch.Type)
		}
		if _, err := consent.ParseStatus(string(ch.Status)); err != nil {
			t.Fatalf("applied with status %q", ch.Status)
		}
		if _, err := consent.ParseRecipientType(string(ch.RecipientType)); err != nil {
			t.Fatalf("applied with recipient type %q", ch.RecipientType)
		}
		if again, err := consent.NormalizeRecipient(ch.Type, ch.Recipient); err != nil || again != ch.Recipient {
			t.Fatalf("applied with a recipient not in our form: %q", ch.Recipient)
		}
		if ch.ConsentDate.IsZero() || ch.Source == "" || !printable(string(ch.Source)) || !printable(ch.TransactionID) ||
			!utf8.ValidString(string(ch.Source)) || !utf8.ValidString(ch.TransactionID) {
			t.Fatalf("applied change %+v cannot be stored", ch)
		}
	})
}
