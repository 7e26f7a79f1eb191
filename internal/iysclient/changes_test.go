package iysclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	if page.After != "1604423200000_next" || len(page.Entries) != 1 {
		t.Fatalf("page = %+v", page)
	}
	r, err := DecodeChange(page.Entries[0])
	if err != nil {
		t.Fatalf("DecodeChange: %v", err)
	}
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
	if err != nil || page.After != "" || len(page.Entries) != 0 {
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
	rows, err := readChangeFile(rc)
	if err != nil {
		t.Fatalf("readChangeFile: %v", err)
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
	rows, err := readChangeFile(strings.NewReader(
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
	if _, err := readChangeFile(strings.NewReader("a,b\n1,2\n")); err == nil {
		t.Error("a file without a recipient column parsed")
	}
	if _, err := readChangeFile(strings.NewReader("")); err == nil {
		t.Error("an empty file parsed")
	}
	rows, err = readChangeFile(strings.NewReader("recipient\tstatus\n+905331234562\tONAY"))
	if err != nil || len(rows) != 1 || rows[0].Record.Status != consent.StatusOnay {
		t.Errorf("tab file: %+v, %v", rows, err)
	}
}

// One entry that cannot be read must not sink the page: the page decodes
// entry by entry, and each entry's error names its field, never a value.
func TestChangesPageKeepsEntriesRaw(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"after":"c2","list":[
			{"consentDate":"15.05.2025 14:23","source":"IYS_WEB","recipient":"+905331234562","recipientType":"BIREYSEL","status":"RET","type":"MESAJ"},
			{"consentDate":"2025-05-15 14:23:00","source":"IYS_YENI","recipient":"+905331234563","recipientType":"BIREYSEL","status":"RET","type":"MESAJ","transactionId":7}]}`)
	})
	page, err := newTestClient(t, f).Changes(context.Background(), "600", "700", ChangesQuery{Source: ChangesByCitizens})
	if err != nil || len(page.Entries) != 2 {
		t.Fatalf("page %+v, %v: want both entries, raw", page, err)
	}
	if _, err := DecodeChange(page.Entries[0]); err == nil || !strings.Contains(err.Error(), "consentDate") {
		t.Errorf("a date in another layout: %v", err)
	}
	r, err := DecodeChange(page.Entries[1])
	if err != nil || r.Source != "IYS_YENI" || r.TransactionID != "7" || r.ConsentDate.String() != "2025-05-15 14:23:00" {
		t.Errorf("the readable entry: %+v, %v", r, err)
	}
}

func TestDecodeChange(t *testing.T) {
	const ok = `"consentDate":"2025-05-15 14:23:00","source":"IYS_WEB","recipient":"+905331234562","recipientType":"BIREYSEL","status":"RET","type":"MESAJ"`
	for _, tt := range []struct{ entry, want string }{
		{`{` + ok + `}`, ""},
		{`{` + ok + `,"transactionId":null,"creationDate":"garbage"}`, ""},
		{`[1]`, "not a JSON object"},
		{`"x"`, "not a JSON object"},
		{`{"source":"IYS_WEB","recipient":"+905331234562","recipientType":"BIREYSEL","status":"RET","type":"MESAJ"}`, "consentDate: missing"},
		{`{` + strings.Replace(ok, `"recipient":"+905331234562"`, `"recipient":905331234562`, 1) + `}`, "recipient: want a string"},
		{`{` + strings.Replace(ok, `"type":"MESAJ"`, `"type":null`, 1) + `}`, "type: missing"},
		{`{` + strings.Replace(ok, `"source":"IYS_WEB"`, `"source":""`, 1) + `}`, "source: missing"},
		{`{` + strings.Replace(ok, "2025-05-15 14:23:00", "2025-05-15T14:23:00+03:00", 1) + `}`, "consentDate: not in İYS's layout"},
		{`{` + ok + `,"transactionId":{"a":1}}`, "transactionId: want a string or number"},
	} {
		_, err := DecodeChange([]byte(tt.entry))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.entry, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want %q", tt.entry, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "5331234562"):
			t.Errorf("%s: the error holds the recipient: %v", tt.entry, err)
		}
	}
}

// readChangeFile reads a whole (small) change file, for tests; also the
// external test package's, as ReadChangeFile.
func readChangeFile(r io.Reader) ([]FileRow, error) {
	f, err := NewChangeFileReader(r)
	if err != nil {
		return nil, err
	}
	var rows []FileRow
	for {
		row, err := f.Next()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
}

var ReadChangeFile = readChangeFile

// BenchmarkChangeFileReader reads a 10,000-row day file row by row: the
// bytes and allocations a row costs (nothing of a row is kept past it; see
// reconcile's TestDayFileIsReadInFlatMemory for the memory held).
func BenchmarkChangeFileReader(b *testing.B) {
	const rows = 10000
	var file []byte
	file = append(file, "consentDate,creationDate,source,recipient,recipientType,status,type,transactionId\n"...)
	for i := range rows {
		file = fmt.Appendf(file, "2025-06-10 09:00:00,2025-06-10 09:00:01,IYS_MOBIL,+90533%07d,BIREYSEL,RET,MESAJ,tx%d\n", i, i)
	}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := NewChangeFileReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			if _, err := f.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("%d rows", n)
		}
	}
}
