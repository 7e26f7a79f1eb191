package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	e := &env{st: st, db: db, m: metrics.New(), logs: &syncBuffer{}, now: time.Now().Truncate(time.Second)}
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

// deliveries is how many deliveries the receiver has had.
func (e *env) deliveries() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
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
	for _, l := range lines {
		if !e.metricsText(t, l) {
			t.Errorf("no line %s in the metrics", l)
		}
	}
}

// metricsText reports whether the metrics' exposition has the line.
func (e *env) metricsText(t *testing.T, line string) bool {
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
	return strings.Contains(b.String(), line+"\n")
}

// A receiver that fails gets the same batch again once the pause is over,
// never before; the cursor moves only after the 2xx. A 5xx and a 429 are
// warnings, another 4xx an error naming the status; each counts by result.
func TestFailedDeliveryIsSentAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.pull(t, e.a, 0, 3)
	statuses := []int{http.StatusInternalServerError, http.StatusBadRequest, http.StatusTooManyRequests, http.StatusOK}
	e.answer = func(n int) int { return statuses[min(n, len(statuses))-1] }
	d := e.deliverer(t, 10)
	for i, status := range statuses {
		if err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		if len(e.got) != i+1 {
			t.Fatalf("after answer %d: %d deliveries, want %d", i, len(e.got), i+1)
		}
		pos, attempts, lastErr := e.cursor(t, e.a)
		if status != http.StatusOK {
			if pos != 0 || attempts != i+1 || !strings.Contains(lastErr, fmt.Sprint(status)) {
				t.Fatalf("after a %d: cursor at %d, %d attempts, last error %q; want 0, %d, the status", status, pos, attempts, lastErr, i+1)
			}
			// Not due yet: nothing is sent.
			if err := d.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			if len(e.got) != i+1 {
				t.Fatalf("sent again before the pause was over")
			}
			e.advance(2 * time.Hour)
		} else if pos != 3 || attempts != 0 || lastErr != "" {
			t.Fatalf("after the 200: cursor at %d, %d attempts, last error %q; want 3, 0, none", pos, attempts, lastErr)
		}
	}
	for _, del := range e.got[1:] {
		if !slices.Equal(del.Changes, e.got[0].Changes) {
			t.Errorf("sent again %+v, want the same batch %+v", del.Changes, e.got[0].Changes)
		}
	}
	if got := e.received("A"); len(got) != 12 || !slices.Equal(got[9:], e.feed(t, e.a)) {
		t.Errorf("received %+v", got)
	}
	e.wantMetrics(t, `iys_webhook_deliveries_total{brand_code="A",result="failed"} 2`,
		`iys_webhook_deliveries_total{brand_code="A",result="refused"} 1`,
		`iys_webhook_deliveries_total{brand_code="A",result="ok"} 1`)
	var levels []string
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var entry struct {
			Level string `json:"level"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatal(err)
		}
		if entry.Error != "" {
			levels = append(levels, entry.Level+" "+entry.Error)
		}
	}
	want := []string{"warn the receiver answered HTTP 500", "error the receiver answered HTTP 400", "warn the receiver answered HTTP 429"}
	if !slices.Equal(levels, want) {
		t.Errorf("logged %q, want %q", levels, want)
	}
}

// A receiver that is unreachable: the batch waits, counted as failed and
// shown by the lag metrics, and goes once the receiver is back.
func TestUnreachableReceiver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.pull(t, e.a, 0, 2)
	d := e.deliverer(t, 10)
	d.o.URL = "http://127.0.0.1:1/closed"
	e.advance(10 * time.Minute) // the changes are 10 minutes old
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if pos, attempts, lastErr := e.cursor(t, e.a); pos != 0 || attempts != 1 || lastErr == "" {
		t.Fatalf("cursor at %d, %d attempts, last error %q", pos, attempts, lastErr)
	}
	e.advance(time.Hour)
	e.wantMetrics(t, `iys_webhook_deliveries_total{brand_code="A",result="failed"} 1`, `iys_webhook_lag_changes{brand_code="A"} 2`)
	if e.metricsText(t, `iys_webhook_oldest_undelivered_seconds{brand_code="A"} 0`) {
		t.Error("the oldest undelivered change's age is 0 while two wait")
	}
	w, ok, err := e.st.WebhookState(ctx, e.a.ID)
	if err != nil || !ok || w.Undelivered != 2 || w.Attempts != 1 || w.OldestAt.IsZero() || !w.DeliveredAt.IsZero() ||
		!w.NextAttemptAt.After(e.clock().Add(-time.Hour)) {
		t.Fatalf("webhook state %+v, %v, %v", w, ok, err)
	}
	d.o.URL = e.srv.URL
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.received("A"); !slices.Equal(got, e.feed(t, e.a)) {
		t.Errorf("received %+v", got)
	}
	e.wantMetrics(t, `iys_webhook_lag_changes{brand_code="A"} 0`)
}

// A change committed while a batch is being delivered goes in the next
// delivery, within the same pass.
func TestChangeCommittedWhileDelivering(t *testing.T) {
	e := newEnv(t)
	e.pull(t, e.a, 0, 2)
	e.onPost = func(n int, _ Delivery) {
		if n == 1 {
			e.pull(t, e.a, 50, 1)
		}
	}
	if err := e.deliverer(t, 10).DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	feed := e.feed(t, e.a)
	if len(e.got) != 2 || len(feed) != 3 || !slices.Equal(e.got[1].Changes, feed[2:]) {
		t.Fatalf("deliveries %+v, want the feed's first two then %+v", e.got, feed[2:])
	}
}

// Replicas delivering at once: each connector is delivered by one at a
// time, so every change arrives exactly once, in order.
func TestReplicasDeliverOnce(t *testing.T) {
	e := newEnv(t)
	for p := range 8 {
		e.pull(t, e.a, p*5, 5)
		e.pull(t, e.b, 100+p*5, 5)
	}
	e.onPost = func(int, Delivery) { time.Sleep(2 * time.Millisecond) }
	var wg sync.WaitGroup
	for range 3 {
		d := e.deliverer(t, 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := d.DeliverDue(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range []store.Connector{e.a, e.b} {
		if got, want := e.received(c.BrandCode), e.feed(t, c); !slices.Equal(got, want) {
			t.Errorf("%s: received %d changes, want the feed's %d once each, in order", c.BrandCode, len(got), len(want))
		}
	}
}

// Verify takes what Sign gives, and refuses another secret, another body,
// a signature tampered with or missing, and a time too far from now.
func TestSignVerify(t *testing.T) {
	at := time.Unix(1_780_000_000, 0)
	body := []byte(`{"brandCode":"A","changes":[]}`)
	h := Sign([]byte("k"), at, body)
	flipped := h[:len(h)-1] + map[bool]string{true: "1", false: "0"}[h[len(h)-1] == '0']
	if !strings.HasPrefix(h, "t=1780000000,v1=") || len(h) != len("t=1780000000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if err := Verify([]byte("k"), h, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, header, body string
		now                  time.Time
		want                 error
	}{
		"secret":   {"k2", h, string(body), at, ErrBadSignature},
		"body":     {"k", h, string(body) + " ", at, ErrBadSignature},
		"tampered": {"k", flipped, string(body), at, ErrBadSignature},
		"time":     {"k", strings.Replace(h, "t=1780000000", "t=1780000001", 1), string(body), at, ErrBadSignature},
		"missing":  {"k", "", string(body), at, ErrBadSignature},
		"old":      {"k", h, string(body), at.Add(6 * time.Minute), ErrTooOld},
	} {
		if err := Verify([]byte(c.secret), c.header, []byte(c.body), c.now, 5*time.Minute); err != c.want {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// The pause doubles from FirstRetry, jittered, and stops at MaxRetry.
func TestPause(t *testing.T) {
	d, err := New(Options{URL: "https://x", Secret: "k", Store: &store.Store{}, Metrics: metrics.New(), Log: zap.NewNop(),
		FirstRetry: time.Second, MaxRetry: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if p := d.pause(1); p < 500*time.Millisecond || p > 1500*time.Millisecond {
			t.Errorf("first pause %v, want 0.5s to 1.5s", p)
		}
		if p := d.pause(3); p < 2*time.Second || p > 6*time.Second {
			t.Errorf("third pause %v, want 2s to 6s", p)
		}
		if p := d.pause(1000); p < 30*time.Second || p > time.Minute {
			t.Errorf("pause after many failures %v, want 30s to 1m", p)
		}
	}
}

// A deliverer stopped while the receiver holds a POST (as a crash between
// the POST and the cursor's update) leaves the cursor where it was: the
// batch is sent again, whole, and the receiver dedupes by id.
func TestStoppedMidPostSendsAgain(t *testing.T) {
	e := newEnv(t)
	e.pull(t, e.a, 0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	e.onPost = func(n int, _ Delivery) {
		if n == 1 {
			cancel() // the receiver took it; the sender is gone before the answer
			time.Sleep(50 * time.Millisecond)
		}
	}
	d := e.deliverer(t, 10)
	if err := d.DeliverDue(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if pos, attempts, _ := e.cursor(t, e.a); pos != 0 || attempts != 0 {
		t.Fatalf("after a stop mid-POST: cursor at %d, %d attempts; want 0, 0", pos, attempts)
	}
	// The stopped turn's transaction is discarded with its connection, so
	// its lock on the cursor may outlive DeliverDue a moment (database/sql
	// closes it on the context's end): until then the cursor is skipped,
	// and the next tick delivers.
	for deadline := time.Now().Add(5 * time.Second); e.deliveries() < 2 && time.Now().Before(deadline); {
		if err := d.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if e.deliveries() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(e.got) != 2 || !slices.Equal(e.got[0].Changes, e.got[1].Changes) || len(e.got[1].Changes) != 3 {
		t.Fatalf("deliveries %+v, want the batch twice", e.got)
	}
	if pos, _, _ := e.cursor(t, e.a); pos != 3 {
		t.Fatalf("cursor at %d, want 3", pos)
	}
}
