package sync_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
	"github.com/iys-sync/iys-sync/internal/sync/iysadapter"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// *store.Store is the engine's Store, with no adapter between them.
var _ engine.Store = (*store.Store)(nil)

const (
	sbUser     = "engine-test"
	sbPassword = "engine-test-pass"
)

// env is one test's world: a fresh database, a sandbox İYS over real HTTP
// and the real client, logging into an observer.
type env struct {
	t      *testing.T
	url    string
	db     *sql.DB // for the test's own queries
	st     *store.Store
	sb     *sandboxtest.Server
	client *iysclient.Client
	logs   *observer.ObservedLogs
	log    *zap.Logger
}

func newEnv(t *testing.T, sbOpts sandbox.Options, clientOpts ...iysclient.Option) *env {
	t.Helper()
	return envOn(t, storedb.NewDB(t), sbOpts, clientOpts...)
}

// envOn is newEnv on a database of the caller's: one of the test's own
// cluster, which the test may restart, or behind a gate it may close.
func envOn(t *testing.T, url string, sbOpts sandbox.Options, clientOpts ...iysclient.Option) *env {
	t.Helper()
	e := &env{t: t, url: url}
	st, err := store.Open(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	if e.db, err = sql.Open("postgres", e.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	sbOpts.Username, sbOpts.Password = sbUser, sbPassword
	e.sb = sandboxtest.Start(t, sbOpts)
	core, logs := observer.New(zapcore.InfoLevel)
	e.logs, e.log = logs, zap.New(core)
	e.client = e.newClient(clientOpts...)
	return e
}

// newClient is the production client with short waits (iysclienttest.Fast),
// logging into the env's observer.
func (e *env) newClient(opts ...iysclient.Option) *iysclient.Client {
	e.t.Helper()
	return iysclienttest.New(e.t, e.sb.URL, iysclient.Credentials{Username: sbUser, Password: sbPassword},
		append([]iysclient.Option{iysclient.WithLogger(e.log)}, opts...)...)
}

// adapterOf is the engine's İYS over the env's client, or over a client of
// its own with these options.
func adapterOf(e *env, opts ...iysclient.Option) engine.IYS {
	if len(opts) == 0 {
		return iysadapter.New(e.client)
	}
	return iysadapter.New(e.newClient(opts...))
}

// shortRetries make a client give up on a call quickly.
func shortRetries() []iysclient.Option {
	return []iysclient.Option{iysclient.WithRetry(50 * time.Millisecond), iysclient.WithMaxAttempts(2)}
}

// fastOptions are engine options with test-sized waits.
func (e *env) fastOptions() engine.Options {
	return engine.Options{
		BatchSize: 1000, Concurrency: 4, RetryBudget: 8, Logger: e.log,
		PollInitial: 5 * time.Millisecond, PollMax: 50 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}
}

func (e *env) engine(opts engine.Options, iys engine.IYS) *engine.Engine {
	e.t.Helper()
	if iys == nil {
		iys = iysadapter.New(e.client)
	}
	eng, err := engine.New(e.st, iys, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return eng
}

func (e *env) run(eng *engine.Engine, req engine.RunRequest) engine.Summary {
	e.t.Helper()
	if req.Trigger == "" {
		req.Trigger = engine.TriggerRunNow
	}
	sum, err := eng.Run(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Run: %v", err)
	}
	return sum
}

// install adds a connector of every channel; its İYS code is numeric.
func (e *env) install(brand string) store.Connector {
	e.t.Helper()
	c, _, err := e.st.InstallConnector(context.Background(), store.Connector{
		BrandCode: brand, IYSCode: "7001" + fmt.Sprint(len(brand)),
		Channels:    []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta},
		FirstSyncAt: time.Now(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// importRows stores rows as one upload file, through the real import path.
func (e *env) importRows(c store.Connector, rows []store.ImportRow) {
	e.t.Helper()
	lines := map[int]bool{}
	for _, r := range rows {
		lines[r.Line] = true
	}
	meta := store.ImportMeta{Path: "test.txt", Channel: "sms", Lines: len(lines), Valid: len(lines)}
	src := func(emit func(store.ImportRow) error) error {
		for _, r := range rows {
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := e.st.ImportFile(context.Background(), c.ID, func() store.ImportMeta { return meta }, src, src)
	if err != nil {
		e.t.Fatal(err)
	}
}

// records reads every record of a connector, by recipient/type.
func (e *env) records(c store.Connector) map[string]store.Record {
	e.t.Helper()
	out := map[string]store.Record{}
	err := e.st.ConsentsOf(context.Background(), c.ID, store.Filter{}, func(r store.Record) error {
		out[r.Recipient+"/"+string(r.RecipientType)+"/"+string(r.Type)] = r
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func key(r store.ImportRow) string {
	return r.Recipient + "/" + string(r.RecipientType) + "/" + string(r.Type)
}

// seed records consents at the sandbox through the İYS API (bulk), before
// the test's import, and waits until İYS processed them all.
func (e *env) seed(c store.Connector, cs []consent.Consent) {
	e.t.Helper()
	ctx := context.Background()
	for start := 0; start < len(cs); start += consent.MaxBulkSize {
		chunk := cs[start:min(start+consent.MaxBulkSize, len(cs))]
		req, err := e.client.SubmitBulk(ctx, c.IYSCode, c.BrandCode, chunk)
		if err != nil {
			e.t.Fatal(err)
		}
		res, err := e.client.WaitBulk(ctx, c.IYSCode, c.BrandCode, req.RequestID, 5*time.Millisecond)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range res {
			if r.Status != iysclient.ResultSuccess {
				e.t.Fatalf("seeding: %+v", r)
			}
		}
	}
}

// recentDate is a random consent date within İYS's 3 business days of now
// (and still so in 30 minutes, so a slow test stays valid), in Istanbul.
func recentDate(rng *rand.Rand) consent.Date {
	now := time.Now()
	for {
		d := consent.NewDate(now.Add(-time.Minute - time.Duration(rng.Int64N(int64(72*time.Hour)))))
		if !consent.TooOld(d, consent.NewDate(now.Add(30*time.Minute))) {
			return d
		}
	}
}

// phone is a Turkish mobile number in E.164, distinct per n.
func phone(n int) string { return fmt.Sprintf("+90532%07d", n) }

func email(n int) string { return fmt.Sprintf("user%d@example.com", n) }

// smsRows makes n MESAJ ONAY rows, dated within the last hours.
func smsRows(first, n int) []store.ImportRow {
	rows := make([]store.ImportRow, n)
	now := time.Now()
	for i := range rows {
		rows[i] = store.ImportRow{Line: i + 1, Recipient: phone(first + i), RecipientType: consent.Bireysel,
			Type: consent.TypeMesaj, Status: consent.StatusOnay, Source: consent.SourceMesaj,
			ConsentDate: consent.NewDate(now.Add(-time.Hour - time.Duration(i)*time.Second))}
	}
	return rows
}

// countSQL runs a count query on the test's database.
func (e *env) countSQL(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// execSQL runs a statement on the test's database.
func (e *env) execSQL(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// logText is every log entry as JSON lines, for searching.
func (e *env) logText() string {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var b bytes.Buffer
	for _, en := range e.logs.All() {
		buf, err := enc.EncodeEntry(en.Entry, en.Context)
		if err != nil {
			e.t.Fatal(err)
		}
		b.Write(buf.Bytes())
		buf.Free()
	}
	return b.String()
}

// logLines counts the entries with this message.
func (e *env) logLines(msg string) int { return e.logs.FilterMessage(msg).Len() }

// recorder is an Observer that keeps every batch report, in order.
type recorder struct {
	mu      gosync.Mutex
	batches []engine.BatchReport
	fails   []engine.RequestFailure
	onBatch func(engine.BatchReport)
}

func (r *recorder) BatchDone(b engine.BatchReport) {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	f := r.onBatch
	r.mu.Unlock()
	if f != nil {
		f(b)
	}
}

func (r *recorder) RequestFailed(f engine.RequestFailure) {
	r.mu.Lock()
	r.fails = append(r.fails, f)
	r.mu.Unlock()
}

func (r *recorder) reports() []engine.BatchReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.BatchReport(nil), r.batches...)
}

func (r *recorder) failures() []engine.RequestFailure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.RequestFailure(nil), r.fails...)
}

// hookIYS wraps an IYS with hooks around its calls.
type hookIYS struct {
	engine.IYS
	mu          gosync.Mutex
	submits     int
	sent        [][]string // each submit's recipients, in the order sent
	afterSubmit func(n int, sub engine.Submission)
}

func (h *hookIYS) SubmitBulk(ctx context.Context, iysCode, brandCode string, items []consent.Consent) (engine.Submission, error) {
	sub, err := h.IYS.SubmitBulk(ctx, iysCode, brandCode, items)
	h.mu.Lock()
	h.submits++
	n := h.submits
	recipients := make([]string, len(items))
	for i, c := range items {
		recipients[i] = c.Recipient
	}
	h.sent = append(h.sent, recipients)
	f := h.afterSubmit
	h.mu.Unlock()
	if err == nil && f != nil {
		f(n, sub)
	}
	return sub, err
}

// connSummary finds a connector's part of a summary.
func connSummary(t *testing.T, sum engine.Summary, brand string) engine.ConnectorSummary {
	t.Helper()
	for _, c := range sum.Connectors {
		if c.BrandCode == brand {
			return c
		}
	}
	t.Fatalf("no summary for %s in %+v", brand, sum)
	return engine.ConnectorSummary{}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
