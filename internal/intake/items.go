package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// wireItem is one consent as the request writes it. Every value is a string;
// absent ones are "".
type wireItem struct {
	Recipient     string `json:"recipient"`
	Type          string `json:"type"`
	Channel       string `json:"channel"`
	Status        string `json:"status"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
	Platform      string `json:"platform"`
	RecipientType string `json:"recipientType"`
	ExternalID    string `json:"externalId"`
}

// Fields of a rejected item that an upload line does not have; the others
// are upload's (email, phone, platform, source, permission, timestamp,
// externalId).
const (
	FieldType          = "type"
	FieldChannel       = "channel"
	FieldRecipientType = "recipientType"
)

// decode reads the body: a JSON array of at most maxItems objects, within
// maxBytes. On failure it returns the status, code and message to answer.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request) (items []wireItem, status int, code, msg string) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.maxBytes))
	dec.DisallowUnknownFields()
	malformed := func(m string) ([]wireItem, int, string, string) {
		return nil, http.StatusUnprocessableEntity, "malformed_body", m
	}
	tooLarge := func() ([]wireItem, int, string, string) {
		return nil, http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("a request holds at most %d consents and %d bytes: send smaller batches", h.maxItems, h.maxBytes)
	}
	// jsonError says what is wrong without quoting the body.
	jsonError := func(at string, err error) ([]wireItem, int, string, string) {
		var maxErr *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var dup *duplicateKeyError
		switch {
		case errors.As(err, &maxErr):
			return tooLarge()
		case errors.As(err, &dup):
			return malformed(fmt.Sprintf("%s: %v", at, dup))
		case errors.Is(err, io.EOF) && at == "":
			return malformed("the body is empty: want a JSON array of consents")
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return malformed("the body ends in the middle of the JSON array")
		case errors.As(err, &syntax):
			return malformed(fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset))
		case errors.As(err, &typ) && typ.Field != "":
			return malformed(fmt.Sprintf("%s: %s must be a string", at, fieldName(typ.Field)))
		case errors.As(err, &typ):
			return malformed(at + " is not a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.TrimPrefix(err.Error(), "json: unknown field ")
			if len(name) > 40 {
				name = name[:40] + `..."`
			}
			return malformed(fmt.Sprintf("%s has the unknown field %s: want recipient, type, channel, status, "+
				"consentDate, source, platform, recipientType, externalId", at, name))
		}
		return malformed("the body could not be read as JSON")
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonError("", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return malformed("the body must be a JSON array of consents, [{...}, ...]")
	}
	items = make([]wireItem, 0, 256)
	for dec.More() {
		if len(items) == h.maxItems {
			return tooLarge()
		}
		items = append(items, wireItem{})
		if err := dec.Decode(&items[len(items)-1]); err != nil {
			return jsonError(describe(len(items)-1), err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return jsonError("the array", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError("the end", err)
		}
		return malformed("the body holds more than one JSON array")
	}
	return items, 0, "", ""
}

// fieldName is the item's key an UnmarshalTypeError names ("Items.recipient"
// in some Go versions): its last part.
func fieldName(f string) string {
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		return f[i+1:]
	}
	return f
}

// checkedRow is a valid item as the store takes it.
type checkedRow struct {
	store.ImportRow
	unknownPlatform, tooOld, maybeMissingCC bool
}

// WarningMaybeMissingCountryCode flags a phone of 10 digits starting with 5,
// kept as given: most likely a Türkiye mobile without its 90, but a foreign
// number may look so (consent.MaybeMissingCountryCode).
const WarningMaybeMissingCountryCode = "maybeMissingCountryCode"

// checkBrandCode refuses a path whose brand code is no code
// (consent.CheckCode) before it reaches the store.
func checkBrandCode(brand string) error {
	if err := consent.CheckCode(brand); err != nil {
		return fmt.Errorf("the brand code in the path %w, as given to iys-sync install", err)
	}
	return nil
}

// check validates one item: first what the API adds to a line (type or
// channel, recipient type), then upload's checks of a line's fields in their
// order. ch is the channel the item counts in ("email" or "sms"), also when
// rejected.
func check(v *upload.Validator, conn store.Connector, it *wireItem) (row checkedRow, ch string, fault *upload.Fault) {
	typ, channel, f := resolveType(it)
	ch = string(channel)
	if ch == "" {
		ch = guessChannel(it.Recipient)
	}
	if f != nil {
		return row, ch, f
	}
	if !slices.Contains(conn.Channels, typ) {
		names := make([]string, len(conn.Channels))
		for i, c := range conn.Channels {
			names[i] = string(c)
		}
		return row, ch, &upload.Fault{Field: FieldType, Message: fmt.Sprintf("%s is not a channel of this connector, which has %s: "+
			"add that channel with iys-sync install --update --channels to send these consents", typ, strings.Join(names, ","))}
	}
	rt := conn.RecipientType
	if it.RecipientType != "" {
		var err error
		if rt, err = consent.ParseRecipientType(it.RecipientType); err != nil {
			return row, ch, &upload.Fault{Field: FieldRecipientType, Message: "must be BIREYSEL or TACIR, in capitals, or absent for the connector's default"}
		}
	}
	l, f := v.Check(upload.Item{Channel: channel, Recipient: it.Recipient, Platform: it.Platform, Source: it.Source,
		Permission: it.Status, Timestamp: it.ConsentDate, ExternalID: it.ExternalID})
	if f != nil {
		return row, ch, f
	}
	row.ImportRow = store.ImportRow{Recipient: l.Recipient, RecipientType: rt, Type: typ, Status: l.Status,
		ConsentDate: l.ConsentDate, Source: l.Source, ExternalID: l.ExternalID}
	row.unknownPlatform, row.tooOld, row.maybeMissingCC = l.UnknownPlatform, l.TooOld, l.MaybeMissingCountryCode
	return row, ch, nil
}

// resolveType reads type and channel: type alone (MESAJ, ARAMA, EPOSTA),
// channel alone (email is EPOSTA, sms is MESAJ), or both when they agree.
func resolveType(it *wireItem) (consent.Type, upload.Channel, *upload.Fault) {
	var channel upload.Channel
	if it.Channel != "" {
		c, err := upload.ParseChannel(it.Channel)
		if err != nil {
			return "", "", &upload.Fault{Field: FieldChannel, Message: "must be email or sms, in lower case"}
		}
		channel = c
	}
	if it.Type == "" {
		switch channel {
		case upload.Email:
			return consent.TypeEposta, channel, nil
		case upload.SMS:
			return consent.TypeMesaj, channel, nil
		}
		return "", "", &upload.Fault{Field: FieldType, Message: "is missing: give type (MESAJ, ARAMA or EPOSTA) or channel (email or sms)"}
	}
	typ, err := consent.ParseType(it.Type)
	if err != nil {
		return "", channel, &upload.Fault{Field: FieldType, Message: "must be MESAJ, ARAMA or EPOSTA, in capitals"}
	}
	want := upload.SMS
	if typ == consent.TypeEposta {
		want = upload.Email
	}
	if channel != "" && channel != want {
		return "", channel, &upload.Fault{Field: FieldChannel, Message: fmt.Sprintf("%s does not go with type %s: "+
			"EPOSTA is email, MESAJ and ARAMA are sms", channel, typ)}
	}
	return typ, want, nil
}

// guessChannel names the channel a rejected item whose type says none is
// counted in, for the imports audit row only.
func guessChannel(recipient string) string {
	if strings.Contains(recipient, "@") {
		return string(upload.Email)
	}
	return string(upload.SMS)
}
