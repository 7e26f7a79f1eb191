package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/intake"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "wh-S3cret-7f1c9a"

// env is a store with connectors A and B, a receiver that checks each
// delivery's signature, and a log kept to search for the secret.
type env struct {
	st      *store.Store
	db      *sqlx.DB
	m       *metrics.Metrics
	a, b    store.Connector
	logs    *syncBuffer
	log     *zap.Logger
	srv     *httptest.Server
	mu      sync.Mutex
	got     []Delivery              // every delivery received, in order
	answer  func(n int) int         // the status of the n-th delivery (from 1); nil: 200
	onPost  func(n int, d Delivery) // run before answering
	now     time.Time
	nowLock sync.Mutex
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	url := storedb.NewDB(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{st: st, db: db, m: metrics.New(), logs: &syncBuffer{}, now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	e.log = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(e.logs), zap.DebugLevel))
	for _, brand := range []string{"A", "B"} {
		c, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: brand, IYSCode: "IYS-" + brand,
			Channels: []consent.Type{consent.TypeMesaj}, FirstSyncAt: time.Date(2025, 5, 16, 1, 0, 0, 0, consent.Istanbul)})
		if err != nil {
			t.Fatal(err)
		}
		if brand == "A" {
			e.a = c
		} else {
			e.b = c
		}
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.receive(t)))
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the secret shows in the log:\n%s", e.logs.String())
		}
	})
	return e
}

// receive verifies the signature, reads the body strictly and answers.
func (e *env) receive(t *testing.T) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify([]byte(secret), r.Header.Get(SignatureHeader), body, e.clock(), 5*time.Minute); err != nil {
			t.Errorf("delivery %s: %v", body, err)
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		var d Delivery
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Errorf("delivery %s: %v", body, err)
		}
		e.mu.Lock()
		e.got = append(e.got, d)
		n, answer, onPost := len(e.got), e.answer, e.onPost
		e.mu.Unlock()
		if onPost != nil {
			onPost(n, d)
		}
		status := http.StatusOK
		if answer != nil {
			status = answer(n)
		}
		w.WriteHeader(status)
	}
}

func (e *env) clock() time.Time {
	e.nowLock.Lock()
	defer e.nowLock.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.nowLock.Lock()
	defer e.nowLock.Unlock()
	e.now = e.now.Add(d)
}

func (e *env) deliverer(t *testing.T, batch int) *Deliverer {
	t.Helper()
	d, err := New(Options{URL: e.srv.URL + "/iys-sync", Secret: secret, Store: e.st, Metrics: e.m, Log: e.log,
		BatchSize: batch, FirstRetry: time.Minute, MaxRetry: time.Hour, Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pull brings n citizens' changes of a connector from İYS, as a pull does,
// in one transaction.
func (e *env) pull(t testing.TB, c store.Connector, from, n int) {
	t.Helper()
	when := consent.NewDate(time.Date(2025, 5, 15, 10, 0, 0, 0, consent.Istanbul))
	var cs []store.Change
	for i := from; i < from+n; i++ {
		cs = append(cs, store.Change{Recipient: fmt.Sprintf("+90533%07d", i), RecipientType: consent.Bireysel,
			Type: consent.TypeMesaj, Status: consent.StatusRet, ConsentDate: when, Source: consent.SourceIYSMobil})
	}
	if _, err := e.st.ApplyChanges(context.Background(), c.ID, store.FeedPage{Source: "IYS", Changes: cs}); err != nil {
		t.Fatal(err)
	}
}

// feed is the connector's whole feed as GET .../changes serves it.
func (e *env) feed(t testing.TB, c store.Connector) []intake.Change {
	t.Helper()
	got, err := e.st.ChangesAfter(context.Background(), c.ID, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]intake.Change, len(got))
	for i, ch := range got {
		out[i] = intake.ChangeOf(ch)
	}
	return out
}

// received is every change delivered for a brand, in order of receipt.
func (e *env) received(brand string) []intake.Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []intake.Change
	for _, d := range e.got {
		if d.BrandCode == brand {
			out = append(out, d.Changes...)
		}
	}
	return out
}

func (e *env) cursor(t testing.TB, c store.Connector) (pos int64, attempts int, lastError string) {
	t.Helper()
	var row struct {
		Pos      int64  `db:"delivered_pos"`
		Attempts int    `db:"attempts"`
		Err      string `db:"last_error"`
	}
	if err := e.db.Get(&row, "SELECT delivered_pos, attempts, coalesce(last_error, '') AS last_error FROM webhook_cursors WHERE connector_id = $1", c.ID); err != nil {
		t.Fatal(err)
	}
	return row.Pos, row.Attempts, row.Err
}

// Every change of each connector reaches the receiver once, in feed order,
// as the feed serves it, in signed batches of at most BatchSize under its
// own brand code; a second pass sends nothing; nothing waits.
func TestDeliversEveryChangeOnceInOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for p := range 3 {
		e.pull(t, e.a, p*5, 5)
	}
	e.pull(t, e.b, 100, 2)
	d := e.deliverer(t, 4)
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Connector{e.a, e.b} {
		want := e.feed(t, c)
		if got := e.received(c.BrandCode); !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("%s: received %d changes %+v\nwant the feed's %d %+v", c.BrandCode, len(got), got, len(want), want)
		}
	}
	for _, del := range e.got {
		if len(del.Changes) == 0 || len(del.Changes) > 4 {
			t.Errorf("a delivery of %d changes, want 1 to 4", len(del.Changes))
		}
	}
	if len(e.got) != 4+1 {
		t.Errorf("%d deliveries, want 5 (15 changes of A by 4, 2 of B)", len(e.got))
	}
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.got) != 5 {
		t.Errorf("a second pass delivered again: %d deliveries", len(e.got))
	}
	e.wantMetrics(t, `iys_webhook_deliveries_total{brand_code="A",result="ok"} 4`,
		`iys_webhook_deliveries_total{brand_code="B",result="ok"} 1`,
		`iys_webhook_lag_changes{brand_code="A"} 0`, `iys_webhook_oldest_undelivered_seconds{brand_code="A"} 0`)
}

// wantMetrics wants each line in the metrics' exposition.
func (e *env) wantMetrics(t *testing.T, lines ...string) {
	t.Helper()
	mfs, err := e.m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range lines {
		if !strings.Contains(b.String(), l+"\n") {
			t.Errorf("no line %s in the metrics", l)
		}
	}
}
