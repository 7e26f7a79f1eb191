package intake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// at keeps whole email addresses out of the source.
const at = "@"

// testNow is the clock of the handler in tests: a Tuesday.
var testNow = consent.NewDate(time.Date(2025, time.May, 20, 12, 0, 0, 0, consent.Istanbul))

// Plain tokens; the handler is given their hashes only.
const (
	tokCRM = "crm-secret-token-0123456789"   // all connectors
	tokWeb = "web-secret-token-9876543210"   // connector C only
	tokOld = "other-secret-token-5555555555" // connectors C and D
)

func hashOf(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// env is a handler over a fresh database with connectors B (every channel)
// and C (EPOSTA only), served by httptest.
type env struct {
	st  *store.Store
	db  *sql.DB
	srv *httptest.Server
	b   store.Connector
	c   store.Connector
}

func newEnv(t testing.TB, log *zap.Logger, opts ...Option) *env {
	t.Helper()
	url := storedb.NewDB(t)
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{st: st, db: db}
	first := time.Date(2025, 5, 21, 1, 0, 0, 0, consent.Istanbul)
	if e.b, _, err = st.InstallConnector(ctx, store.Connector{BrandCode: "B", IYSCode: "I-B", FirstSyncAt: first,
		Channels: []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta}}); err != nil {
		t.Fatal(err)
	}
	if e.c, _, err = st.InstallConnector(ctx, store.Connector{BrandCode: "C", IYSCode: "I-C", FirstSyncAt: first,
		Channels: []consent.Type{consent.TypeEposta}, RecipientType: consent.Tacir, DefaultSource: consent.SourceMobil}); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	opts = append([]Option{WithClock(func() consent.Date { return testNow })}, opts...)
	h, err := New(st, []string{"crm:" + hashOf(tokCRM), "web:" + hashOf(tokWeb) + ":C", "old:" + hashOf(tokOld) + ":C,D"}, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// answer is an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to the brand's consents endpoint; tok "" sends no
// Authorization, ctype "" no Content-Type.
func (e *env) post(t testing.TB, brand, tok, ctype string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/connectors/"+brand+"/consents", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// send posts items as JSON with the CRM token and wants a 200.
func (e *env) send(t testing.TB, brand string, items []map[string]string) Response {
	t.Helper()
	body, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	a := e.post(t, brand, tokCRM, "application/json", body)
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var r Response
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("%v: %s", err, a.body)
	}
	if len(r.Items) != len(items) || r.Received != len(items) ||
		r.Accepted+r.Superseded+r.Unchanged+r.Rejected != len(items) {
		t.Fatalf("response does not account for %d items: %+v", len(items), r)
	}
	for i, it := range r.Items {
		if it.Index != i {
			t.Fatalf("item %d has index %d", i, it.Index)
		}
	}
	return r
}

// wantError checks an error answer: status and {"error":{"code","message"}}.
func wantError(t testing.TB, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	var b errorBody
	if err := json.Unmarshal(a.body, &b); err != nil || b.Error.Code != code || b.Error.Message == "" {
		t.Fatalf("error body %s, want code %s (%v)", a.body, code, err)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
}

// count runs a count query.
func (e *env) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// written counts what requests may write: records and imports rows.
func (e *env) written(t testing.TB) [2]int {
	return [2]int{e.count(t, "SELECT count(*) FROM consents"), e.count(t, "SELECT count(*) FROM imports")}
}
