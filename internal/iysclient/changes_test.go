package iysclient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestChangesPassesCursorAsIs(t *testing.T) {
	const cursor = "1604423100000_0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	var got http.Request
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		got = *r
		writeJSON(w, http.StatusOK, map[string]any{"after": "1604423200000_next", "list": []map[string]any{{
			"consentDate": "2025-05-15 14:23:00", "creationDate": "2025-05-15 15:00:01", "source": "IYS_KISA_LINK",
			"recipient": "+905331234562", "recipientType": "BIREYSEL", "status": "RET", "type": "MESAJ",
			"transactionId": "tx1"}}})
	})
	c := newTestClient(t, f)
	page, err := c.Changes(context.Background(), "600", "700", ChangesQuery{Source: ChangesByCitizens, After: cursor, Limit: 500})
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	q := got.URL.Query()
	if got.URL.Path != "/sps/600/brands/700/consents/changes" || q.Get("source") != "IYS" ||
		q.Get("after") != cursor || q.Get("limit") != "500" {
		t.Errorf("request = %s", got.URL)
	}
	if page.After != "1604423200000_next" || len(page.List) != 1 {
		t.Fatalf("page = %+v", page)
	}
	r := page.List[0]
	if r.Status != consent.StatusRet || r.Source != "IYS_KISA_LINK" || r.TransactionID != "tx1" ||
		r.ConsentDate.String() != "2025-05-15 14:23:00" || r.CreationDate.String() != "2025-05-15 15:00:01" {
		t.Errorf("record = %+v", r)
	}
}

func TestChangesFirstPageHasNoCursor(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.URL.Query()["after"]; ok || r.URL.Query().Get("source") != "HS" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		writeJSON(w, http.StatusOK, map[string]any{"list": []any{}})
	})
	c := newTestClient(t, f)
	page, err := c.Changes(context.Background(), "600", "700", ChangesQuery{Source: ChangesByBrand})
	if err != nil || page.After != "" || len(page.List) != 0 {
		t.Errorf("page = %+v, %v", page, err)
	}
}

func TestChangesValidates(t *testing.T) {
	c := newTestClient(t, newFakeIYS(t, okBrands))
	for _, q := range []ChangesQuery{{Source: ""}, {Source: "iys"}, {Source: ChangesByBrand, Limit: -1}} {
		if _, err := c.Changes(context.Background(), "600", "700", q); err == nil {
			t.Errorf("query %+v accepted", q)
		}
	}
	if _, err := c.Changes(context.Background(), "..", "700", ChangesQuery{Source: ChangesByBrand}); err == nil {
		t.Error("iys code .. accepted")
	}
}

func TestChangeFileAndSummaryUseIstanbulDay(t *testing.T) {
	const csv = "\uFEFFAlıcı;Alıcı Tipi;İzin Tipi;Durum;Kaynak;İzin Tarihi;İşlem ID;Extra\n" +
		"+905331234562;BIREYSEL;mesaj;RET;IYS_MOBIL;2025-05-15 14:23:00;tx1;x\n" +
		"u@example.com;TACIR;EPOSTA;ONAY;HS_WEB;15.05.2025;tx2\n"
	paths := map[string]bool{}
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		paths[r.URL.Path] = true
		if strings.HasSuffix(r.URL.Path, "/file") {
			w.Header().Set("Content-Type", "text/csv")
			_, _ = io.WriteString(w, csv)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"MESAJ": map[string]int{"IYS_MOBIL": 1}})
	})
	c := newTestClient(t, f)
	day := time.Date(2025, 5, 15, 22, 30, 0, 0, time.UTC) // already the 16th in Istanbul
	rc, err := c.ChangeFile(context.Background(), "600", "700", day)
	if err != nil {
		t.Fatalf("ChangeFile: %v", err)
	}
	defer rc.Close()
	rows, err := ParseChangeFile(rc)
	if err != nil {
		t.Fatalf("ParseChangeFile: %v", err)
	}
	if !paths["/sps/600/brands/700/changes/2025-05-16/file"] {
		t.Errorf("paths = %v", paths)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	r := rows[0].Record
	if r.Recipient != "+905331234562" || r.Type != consent.TypeMesaj || r.Status != consent.StatusRet ||
		r.Source != consent.SourceIYSMobil || r.ConsentDate.String() != "2025-05-15 14:23:00" ||
		r.TransactionID != "tx1" || rows[0].Fields["Extra"] != "x" || rows[0].Line != 2 {
		t.Errorf("row 0 = %+v", rows[0])
	}
	if rows[1].Record.RecipientType != consent.Tacir || !rows[1].Record.ConsentDate.IsZero() {
		t.Errorf("row 1 = %+v (an unreadable date must stay zero)", rows[1])
	}

	sum, err := c.ChangeSummary(context.Background(), "600", "700", day, consent.Tacir)
	if err != nil || !strings.Contains(string(sum), "IYS_MOBIL") {
		t.Errorf("summary = %s, %v", sum, err)
	}
	if !paths["/sps/600/brands/700/changes/2025-05-16/recipients/TACIR"] {
		t.Errorf("paths = %v", paths)
	}
}

func TestParseChangeFile(t *testing.T) {
	rows, err := ParseChangeFile(strings.NewReader(
		"transactionId,recipient_type,RECIPIENT,type,status,source,consentDate,creationDate\n" +
			"t1,BIREYSEL,+905331234562,ARAMA,ONAY,HS_WEB,2025-05-15 14:23:00,2025-05-15T15:00:00Z\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0].Record
	if r.Type != consent.TypeArama || r.RecipientType != consent.Bireysel || r.TransactionID != "t1" ||
		r.CreationDate.String() != "2025-05-15 18:00:00" {
		t.Errorf("record = %+v", r)
	}
	if _, err := ParseChangeFile(strings.NewReader("a,b\n1,2\n")); err == nil {
		t.Error("a file without a recipient column parsed")
	}
	if _, err := ParseChangeFile(strings.NewReader("")); err == nil {
		t.Error("an empty file parsed")
	}
	rows, err = ParseChangeFile(strings.NewReader("recipient\tstatus\n+905331234562\tONAY"))
	if err != nil || len(rows) != 1 || rows[0].Record.Status != consent.StatusOnay {
		t.Errorf("tab file: %+v, %v", rows, err)
	}
}
