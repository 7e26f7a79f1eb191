package intake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// FuzzIntakeItems feeds request bodies to the intake's decoding and item
// checks: they never panic; a body is taken whole or refused with 413 or
// 422 and a message, and exactly when encoding/json (DisallowUnknownFields,
// and no key twice) takes it, with the same items; each item of a taken
// body is either a row the store takes (every field set, its channel its
// type's) or rejected naming a field.
//
//	go test -run '^$' -fuzz '^FuzzIntakeItems$' -fuzztime 10m ./internal/intake
func FuzzIntakeItems(f *testing.F) {
	for _, seed := range []string{
		`[{"recipient":"905331234562","type":"MESAJ","status":"ONAY","consentDate":"2025-05-15 14:23:00","platform":"web"}]`,
		`[{"recipient":"a` + at + `b.com","channel":"email","status":"RET","consentDate":"2025-05-15T14:23:00+03:00","source":"HS_WEB","externalId":"x","recipientType":"TACIR"}]`,
		`[{"recipient":"05331234562","channel":"sms","type":"ARAMA","status":"ONAY","consentDate":"2025-05-15 14:23:00","platform":"sms"}]`,
		`[{"status":"ONAY","Status":"RET"}]`,
		`[{"recipient":"905331234562","recipi\u0065nt":"x"}]`,
		`[{"recipient":null},{},null,1,"x",[]]`,
		"[{\"externalId\":\"a\\u015fb\\\"c\\/\xff\", \"STATUS\" : \"ONAY\" } ]",
		`[{"recipient":"905331234562","x":1}]`,
		`[]`, `{}`, ``, `[`, `[{}`, `[{}][]`, `[{"a":{"b":[1,2]}}]`,
	} {
		f.Add([]byte(seed))
	}
	h := &Handler{maxItems: 100, maxBytes: 1 << 16}
	conn := store.Connector{BrandCode: "B", RecipientType: consent.Bireysel, DefaultSource: consent.SourceWeb,
		Channels: []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta}}
	v, err := upload.NewValidator(conn.DefaultSource, testNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/connectors/B/consents", bytes.NewReader(body))
		items, status, code, msg := h.decode(httptest.NewRecorder(), r)
		if want, ok := decodeLikeEncodingJSON(body, h.maxItems); len(body) <= int(h.maxBytes) &&
			(ok != (status == 0) || ok && !reflect.DeepEqual(items, want)) {
			t.Fatalf("decoded %d items (%d %s), encoding/json %d (taken: %v)", len(items), status, msg, len(want), ok)
		}
		if status != 0 {
			if (status != http.StatusRequestEntityTooLarge && status != http.StatusUnprocessableEntity) || code == "" || msg == "" {
				t.Fatalf("refused with %d %q %q", status, code, msg)
			}
			return
		}
		if len(items) > h.maxItems {
			t.Fatalf("%d items taken, over %d", len(items), h.maxItems)
		}
		for i := range items {
			row, ch, fault := check(v, conn, &items[i])
			if ch != "email" && ch != "sms" {
				t.Fatalf("item %d counts in channel %q", i, ch)
			}
			if fault != nil {
				if fault.Field == "" || fault.Message == "" {
					t.Fatalf("item %d rejected without field or message: %+v", i, fault)
				}
				continue
			}
			switch {
			case row.Recipient == "", row.ConsentDate.IsZero(), !strings.HasPrefix(string(row.Source), "HS_"),
				row.Status != consent.StatusOnay && row.Status != consent.StatusRet,
				row.RecipientType != consent.Bireysel && row.RecipientType != consent.Tacir,
				!slices.Contains(conn.Channels, row.Type),
				(row.Type == consent.TypeEposta) != (ch == "email"):
				t.Fatalf("item %d accepted as %+v in channel %s", i, row.ImportRow, ch)
			}
		}
	})
}

// plainItem is wireItem decoded by encoding/json itself.
type plainItem wireItem

// decodeLikeEncodingJSON is the reference decoding: encoding/json with
// unknown keys refused, items with a key given twice (in any case) refused
// too, at most max items. ok is false for a body it refuses.
func decodeLikeEncodingJSON(body []byte, max int) (items []wireItem, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, false
	}
	items = []wireItem{}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil || len(items) == max {
			return nil, false
		}
		var p plainItem
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&p); err != nil || keyTwice(raw) {
			return nil, false
		}
		items = append(items, wireItem(p))
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return items, true
}

// keyTwice walks an object's keys with encoding/json's tokens.
func keyTwice(raw []byte) bool {
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	var seen []string
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		key, _ := tok.(string)
		for _, k := range seen {
			if strings.EqualFold(k, key) {
				return true
			}
		}
		seen = append(seen, key)
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}
