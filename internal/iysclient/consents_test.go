package iysclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestAddConsent(t *testing.T) {
	var body string
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		if r.Method != http.MethodPost || r.URL.Path != "/sps/600/brands/700/consents" {
			t.Errorf("request = %s %s", r.Method, r.URL.Path)
		}
		writeJSON(w, http.StatusOK, map[string]any{"transactionId": "tx9", "creationDate": "2025-05-15 14:24:00"})
	})
	c := newTestClient(t, f)
	tx, err := c.AddConsent(context.Background(), "600", "700", testConsents(t, 1)[0])
	if err != nil {
		t.Fatalf("AddConsent: %v", err)
	}
	if tx.TransactionID != "tx9" || tx.CreationDate.String() != "2025-05-15 14:24:00" {
		t.Errorf("transaction = %+v", tx)
	}
	want := `{"recipient":"+905331234500","recipientType":"BIREYSEL","type":"MESAJ","status":"ONAY","consentDate":"2025-05-15 14:23:00","source":"HS_WEB"}`
	if body != want {
		t.Errorf("body = %s\nwant   %s", body, want)
	}
}

func TestAddConsentVerdict(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusBadRequest, "H174", "already recorded")
	})
	c := newTestClient(t, f)
	_, err := c.AddConsent(context.Background(), "600", "700", testConsents(t, 1)[0])
	if ErrorClass(err) != consent.ClassAlreadyInIYS || f.apiCalls.Load() != 1 {
		t.Errorf("err = %v (class %s) after %d requests", err, ErrorClass(err), f.apiCalls.Load())
	}
}

func TestConsentStatus(t *testing.T) {
	found := true
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		var q map[string]string
		_ = json.NewDecoder(r.Body).Decode(&q)
		if r.URL.Path != "/sps/600/brands/700/consents/status" || q["recipient"] != "+905331234562" ||
			q["recipientType"] != "BIREYSEL" || q["type"] != "ARAMA" {
			t.Errorf("request %s %v", r.URL.Path, q)
		}
		if !found {
			writeError(w, http.StatusNotFound, "", "no record")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"recipient": "+905331234562", "recipientType": "BIREYSEL",
			"type": "ARAMA", "status": "ONAY", "source": "HS_WEB", "consentDate": "2025-05-15 14:23:00",
			"creationDate": "garbled", "transactionId": 77})
	})
	c := newTestClient(t, f)
	q := StatusQuery{Recipient: "+905331234562", RecipientType: consent.Bireysel, Type: consent.TypeArama}
	rec, err := c.ConsentStatus(context.Background(), "600", "700", q)
	if err != nil {
		t.Fatalf("ConsentStatus: %v", err)
	}
	if rec.Status != consent.StatusOnay || rec.TransactionID != "77" || !rec.CreationDate.IsZero() {
		t.Errorf("record = %+v", rec)
	}
	found = false
	_, err = c.ConsentStatus(context.Background(), "600", "700", q)
	if !errors.Is(err, ErrNoRecord) || !errors.As(err, new(*APIError)) {
		t.Errorf("err = %v, want ErrNoRecord and *APIError", err)
	}
}

func TestRecipientsStatus(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		var q struct {
			Recipients []string `json:"recipients"`
		}
		_ = json.NewDecoder(r.Body).Decode(&q)
		if r.URL.Path != "/sps/600/brands/700/consents/BIREYSEL/status/EPOSTA" || len(q.Recipients) != 3 {
			t.Errorf("request %s %v", r.URL.Path, q)
		}
		writeJSON(w, http.StatusOK, map[string]any{"list": []any{"a@example.com", map[string]string{"recipient": "b@example.com"}}})
	})
	c := newTestClient(t, f)
	got, err := c.RecipientsStatus(context.Background(), "600", "700", consent.Bireysel, consent.TypeEposta,
		[]string{"a@example.com", "b@example.com", "c@example.com"})
	if err != nil || len(got) != 2 || got[0] != "a@example.com" || got[1] != "b@example.com" {
		t.Errorf("got %v, %v", got, err)
	}
	if got, err := c.RecipientsStatus(context.Background(), "600", "700", consent.Bireysel, consent.TypeEposta, nil); got != nil || err != nil {
		t.Errorf("empty list: %v, %v", got, err)
	}
}
