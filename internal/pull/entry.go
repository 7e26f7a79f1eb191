package pull

import (
	"errors"
	"strings"
	"unicode"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/store"
)

// readEntry reads one entry of the feed as İYS sent it into a change of
// our records, or says why it cannot: the reason names the field and holds
// no personal data. İYS's sources are accepted whatever they are (new
// citizen channels appear); the values our records hold are checked.
func readEntry(raw []byte) (store.Change, error) {
	r, err := iysclient.DecodeChange(raw)
	if err != nil {
		return store.Change{}, err
	}
	var reasons []string
	if _, err := consent.ParseType(string(r.Type)); err != nil {
		reasons = append(reasons, "type: unknown: want MESAJ, ARAMA or EPOSTA")
	}
	if _, err := consent.ParseStatus(string(r.Status)); err != nil {
		reasons = append(reasons, "status: unknown: want ONAY or RET")
	}
	if _, err := consent.ParseRecipientType(string(r.RecipientType)); err != nil {
		reasons = append(reasons, "recipientType: unknown: want BIREYSEL or TACIR")
	}
	if !printable(string(r.Source)) {
		reasons = append(reasons, "source: holds control characters")
	}
	if !printable(r.TransactionID) {
		reasons = append(reasons, "transactionId: holds control characters")
	}
	// A recipient is read by its type's rules: email or phone.
	rec, err := consent.NormalizeRecipient(r.Type, r.Recipient)
	if err != nil && len(reasons) == 0 {
		reasons = append(reasons, "recipient: "+err.Error())
	}
	if len(reasons) > 0 {
		return store.Change{}, errors.New(strings.Join(reasons, "; "))
	}
	return store.Change{Recipient: rec, RecipientType: r.RecipientType, Type: r.Type, Status: r.Status,
		ConsentDate: r.ConsentDate, Source: r.Source, TransactionID: r.TransactionID, CreationDate: r.CreationDate}, nil
}

// printable reports whether s holds no control characters (PostgreSQL text
// refuses NUL; the rest has no place in a source or an id).
func printable(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) < 0
}
