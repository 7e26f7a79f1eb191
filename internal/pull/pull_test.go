package pull

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	t      *testing.T
	db     *sql.DB // the same database, to set up states only a run would make
	st     *store.Store
	client *iysclient.Client
	sb     *sandboxtest.Server
	conn   store.Connector
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dbURL := storedb.NewDB(t)
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: "600001", IYSCode: "700001",
		Channels: []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta}, FirstSyncAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, st: st, conn: c}
	e.withSandbox(sandbox.Options{Seed: 7})
	return e
}

// withSandbox points e at a sandbox of its own with these options.
func (e *env) withSandbox(opts sandbox.Options) {
	e.t.Helper()
	e.sb = sandboxtest.Start(e.t, opts)
	e.client = iysclienttest.New(e.t, e.sb.URL, iysclient.Credentials{Username: sandbox.DefaultUsername, Password: sandbox.DefaultPassword})
}

func (e *env) ref() consent.ConnectorRef {
	return consent.ConnectorRef{ID: e.conn.ID, BrandCode: e.conn.BrandCode, IYSCode: e.conn.IYSCode, Active: true}
}

// citizen records a change made through İYS (consent date: now).
func (e *env) citizen(recipient string, typ consent.Type, st consent.Status, src string) {
	e.t.Helper()
	e.sb.Admin.Citizen(sandboxtest.Change{IYSCode: "700001", BrandCode: "600001", Recipient: recipient,
		RecipientType: "BIREYSEL", Type: string(typ), Status: string(st), Source: src})
}

// importOne stores one consent of ours as pending, through the real import.
func (e *env) importOne(recipient string, st consent.Status, at time.Time) {
	e.t.Helper()
	_, err := e.st.ImportFile(context.Background(), e.conn.ID, func() store.ImportMeta {
		return store.ImportMeta{Path: "t.txt", Channel: "sms", Lines: 1, Valid: 1}
	}, func(emit func(store.ImportRow) error) error {
		return emit(store.ImportRow{Line: 1, Recipient: recipient, RecipientType: consent.Bireysel, Type: consent.TypeMesaj,
			Status: st, ConsentDate: consent.NewDate(at), Source: consent.SourceWeb})
	}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) record(recipient string) store.Record {
	e.t.Helper()
	var out *store.Record
	err := e.st.ConsentsOf(context.Background(), e.conn.ID, store.Filter{}, func(r store.Record) error {
		if r.Recipient == recipient && r.Type == consent.TypeMesaj {
			out = &r
		}
		return nil
	})
	if err != nil || out == nil {
		e.t.Fatalf("record %s: %v", recipient, err)
	}
	return *out
}

func phone(i int) string { return fmt.Sprintf("+90533%07d", i) }

func TestPullAppliesCitizensChangesNewestWinsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// Ours: an ONAY given an hour ago (older than the citizen's RET to come),
	// and one "in the future" of the citizen's change, which must win.
	e.importOne(phone(1), consent.StatusOnay, time.Now().Add(-time.Hour))
	e.importOne(phone(2), consent.StatusOnay, time.Now().Add(time.Hour))
	for i := 1; i <= 3; i++ {
		e.citizen(phone(i), consent.TypeMesaj, consent.StatusRet, "IYS_MOBIL")
	}
	p := New(e.st, e.client, nil)
	res, err := p.PullConnector(ctx, e.ref())
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 3 || res.Applied != 2 {
		t.Fatalf("first pull %+v, want 3 changes read, 2 applied (ours for %s is newer)", res, phone(2))
	}
	r1 := e.record(phone(1))
	if r1.Status != consent.StatusRet || r1.State != consent.StateSynced || r1.Outcome.V != consent.OutcomeFromIYS ||
		r1.Source != "IYS_MOBIL" || r1.Version != 2 {
		t.Errorf("citizen's newer RET not applied: %+v", r1)
	}
	if r2 := e.record(phone(2)); r2.Status != consent.StatusOnay || r2.State != consent.StatePending {
		t.Errorf("our newer ONAY lost to an older citizen change: %+v", r2)
	}
	if r3 := e.record(phone(3)); r3.Status != consent.StatusRet || r3.Outcome.V != consent.OutcomeFromIYS || r3.ExternalID != "" {
		t.Errorf("a citizen's change for a recipient we did not know: %+v", r3)
	}
	res, err = p.PullConnector(ctx, e.ref())
	if err != nil || res.Changes != 0 || res.Applied != 0 {
		t.Fatalf("second pull %+v, %v: want nothing", res, err)
	}
	cur, err := e.st.PullCursors(ctx, e.conn.ID)
	if err != nil || cur["IYS"].After == "" || cur["IYS"].Applied != 2 || cur["IYS"].PulledAt.IsZero() || cur["HS"].PulledAt.IsZero() {
		t.Fatalf("cursors %+v, %v", cur, err)
	}
}

// failingFeed fails the page after the first, once: a crash between pages.
type failingFeed struct {
	Feed
	calls, failAt int
}

func (f *failingFeed) Changes(ctx context.Context, iysCode, brandCode string, q iysclient.ChangesQuery) (*iysclient.ChangesPage, error) {
	f.calls++
	if f.calls == f.failAt {
		return nil, errors.New("connection reset")
	}
	return f.Feed.Changes(ctx, iysCode, brandCode, q)
}

func TestCrashBetweenPagesAppliesEachChangeOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const n = 23
	for i := 0; i < n; i++ {
		e.citizen(phone(i), consent.TypeMesaj, consent.StatusOnay, "IYS_WEB")
	}
	feed := &failingFeed{Feed: e.client, failAt: 3}
	p := New(e.st, feed, nil)
	p.PageSize = 5
	if _, err := p.PullConnector(ctx, e.ref()); err == nil {
		t.Fatal("the pull went on past a failed page")
	}
	cur, _ := e.st.PullCursors(ctx, e.conn.ID)
	if cur["IYS"].Applied != 10 {
		t.Fatalf("applied before the crash = %d, want the 2 pages stored (10)", cur["IYS"].Applied)
	}
	res, err := p.PullConnector(ctx, e.ref())
	if err != nil {
		t.Fatal(err)
	}
	cur, _ = e.st.PullCursors(ctx, e.conn.ID)
	if res.Changes != n-10 || cur["IYS"].Applied != n {
		t.Fatalf("after the retry: read %d (want %d), applied in all %d (want %d)", res.Changes, n-10, cur["IYS"].Applied, n)
	}
	for i := 0; i < n; i++ {
		if r := e.record(phone(i)); r.Version != 1 || r.Status != consent.StatusOnay {
			t.Fatalf("%s: %+v: each change once, version 1", phone(i), r)
		}
	}
}
