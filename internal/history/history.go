// Package history tells the story of one recipient's consents from the
// events the store keeps (store.History): what came from which file line,
// intake request, source read or İYS change, what was sent to İYS and what
// İYS answered, oldest first. The CLI's history command and the intake
// server's history endpoint both answer with it.
package history

import (
	"fmt"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
)

// Story is the answer: the recipient and its events, oldest first.
type Story struct {
	Recipient string  `json:"recipient"`
	Events    []Event `json:"events"`
}

// Event is one event as the answer gives it. Fields that the kind has not
// are empty (omitted in JSON).
type Event struct {
	At            string `json:"at"`   // RFC 3339, Türkiye time
	Kind          string `json:"kind"` // file, api, source, iys, reconcile, refresh, sent, verdict, requeued, baseline
	Type          string `json:"type"`
	Status        string `json:"status"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
	RecipientType string `json:"recipientType"`
	ExternalID    string `json:"externalId,omitempty"`
	Origin        string `json:"origin"` // file:NAME:LINE, api:TOKEN:INDEX, source:BRAND:EXTERNAL_ID, iys:SOURCE ...
	ImportID      int64  `json:"importId,omitempty"`
	RequestID     string `json:"requestId,omitempty"`
	SubrequestID  string `json:"subrequestId,omitempty"`
	TransactionID string `json:"transactionId,omitempty"`
	CreationDate  string `json:"creationDate,omitempty"` // İYS's, for a pulled change
	Version       int64  `json:"version"`
	State         string `json:"state"`
	Outcome       string `json:"outcome,omitempty"`
	Code          string `json:"code,omitempty"`
	Message       string `json:"message,omitempty"`
	Description   string `json:"description"` // the event in words
}

// Of builds the story of recipient from its records' events.
func Of(recipient string, evs []store.RecipientEvent) Story {
	s := Story{Recipient: recipient, Events: make([]Event, 0, len(evs))}
	for _, e := range evs {
		out := Event{
			At: e.At.In(consent.Istanbul).Format(time.RFC3339), Kind: e.Kind, Type: e.Type, Status: e.Status,
			ConsentDate: consent.NewDate(e.ConsentDate).String(), Source: e.Source, RecipientType: e.RecipientType,
			ExternalID: e.ExternalID, Origin: e.Origin, ImportID: e.ImportID.Int64, RequestID: e.RequestID.String,
			SubrequestID: e.SubrequestID.String, TransactionID: e.TransactionID.String, Version: e.Version,
			State: e.State, Outcome: e.Outcome.String, Code: e.IYSCode.String, Message: e.IYSMessage.String,
		}
		if e.CreationDate.Valid {
			out.CreationDate = consent.NewDate(e.CreationDate.Time).String()
		}
		out.Description = describe(out)
		s.Events = append(s.Events, out)
	}
	return s
}

// describe says what an event was, in words.
func describe(e Event) string {
	value := fmt.Sprintf("%s given %s, source %s", e.Status, e.ConsentDate, e.Source)
	if e.ExternalID != "" {
		value += ", external id " + e.ExternalID
	}
	var from string
	switch e.Kind {
	case store.EventFile:
		name, line := splitLast(strings.TrimPrefix(e.Origin, "file:"))
		from = fmt.Sprintf("imported from file %s, line %s (import %d)", name, line, e.ImportID)
	case store.EventAPI:
		token, item := splitLast(strings.TrimPrefix(e.Origin, "api:"))
		from = fmt.Sprintf("received by the intake API from token %s, request %s, item %s", token, e.RequestID, item)
	case store.EventSource:
		brand, user := splitLast(strings.TrimPrefix(e.Origin, "source:"))
		from = fmt.Sprintf("read from the user table of %s, user %s (read %d)", brand, user, e.ImportID)
	case store.EventIYS:
		from = "pulled from İYS's changes"
	case store.EventReconcile:
		from = "repaired from İYS's day file"
	case store.EventRefresh:
		from = "taken from İYS, which holds a newer consent than ours"
	case store.EventSent:
		return fmt.Sprintf("sent to İYS in request %s, subrequest %s", e.RequestID, e.SubrequestID)
	case store.EventVerdict:
		return verdict(e)
	case store.EventRequeued:
		return fmt.Sprintf("put back to be sent to İYS again (%s)", e.Origin)
	case store.EventRedrive:
		who, filter := splitLast(strings.TrimPrefix(e.Origin, "redrive:"))
		return fmt.Sprintf("redriven by %s (%s): put back to be sent to İYS again, version %d", who, filter, e.Version)
	case store.EventBaseline:
		return "held when the history began: " + value
	default:
		return fmt.Sprintf("%s (%s): %s", e.Kind, e.Origin, value)
	}
	if e.TransactionID != "" {
		value += ", İYS transaction " + e.TransactionID
	}
	if e.CreationDate != "" {
		value += ", recorded by İYS " + e.CreationDate
	}
	if e.Outcome == "superseded" {
		return from + ": " + value + "; not applied: the record holds a newer consent"
	}
	return from + ": " + value
}

// verdict says what a verdict event wrote.
func verdict(e Event) string {
	why := strings.TrimSpace(strings.TrimSpace(e.Code + " " + e.Message))
	if why != "" {
		why = ": " + why
	}
	switch e.State {
	case string(consent.StateSynced):
		s := "İYS accepted it (" + e.Outcome
		if e.TransactionID != "" {
			s += ", transaction " + e.TransactionID
		}
		return s + ")"
	case string(consent.StateRejected):
		return "İYS refused it (" + e.Outcome + ")" + why
	case string(consent.StateFailed):
		return "sending it failed for good" + why
	default:
		return "to be sent again" + why
	}
}

// splitLast cuts s at its last colon: a file name may hold one, a line number not.
func splitLast(s string) (string, string) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// Text writes the story for people: a line per event.
func (s Story) Text() string {
	var b strings.Builder
	if len(s.Events) == 0 {
		fmt.Fprintf(&b, "No events of %s.\n", s.Recipient)
		return b.String()
	}
	fmt.Fprintf(&b, "History of %s, oldest first:\n", s.Recipient)
	for _, e := range s.Events {
		fmt.Fprintf(&b, "%s  %-6s  %s\n", e.At, e.Type, e.Description)
	}
	return b.String()
}

// Recipient reads a recipient as given on a command line or in a URL: an
// email address, or a phone number with or without its +.
func Recipient(s string) (string, error) {
	t := consent.TypeMesaj // any phone type: they normalise alike
	if strings.Contains(s, "@") {
		t = consent.TypeEposta
	}
	return consent.NormalizeRecipient(t, s)
}
