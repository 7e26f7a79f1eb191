package reconcile

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // the test's own connection, to set records' states

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fakeIYS serves a day file, summaries and İYS's current records.
type fakeIYS struct {
	file      string
	summaries map[consent.RecipientType]string
	current   map[consent.Key]*Held
	lists     []int // the size of each bulk status query
	lookups   []consent.Key
}

func (f *fakeIYS) ChangeFile(_ context.Context, _, _ string, day time.Time) (io.ReadCloser, error) {
	if day.Format(time.DateOnly) != testDay.String() {
		return nil, fmt.Errorf("asked for %s", day)
	}
	return io.NopCloser(strings.NewReader(f.file)), nil
}

func (f *fakeIYS) ChangeSummary(_ context.Context, _, _ string, _ time.Time, rt consent.RecipientType) (json.RawMessage, error) {
	return json.RawMessage(f.summaries[rt]), nil
}

func (f *fakeIYS) RecipientsStatus(_ context.Context, _, _ string, rt consent.RecipientType, t consent.Type, recipients []string) ([]string, error) {
	f.lists = append(f.lists, len(recipients))
	var out []string
	for _, r := range recipients {
		if h := f.current[consent.Key{Recipient: r, RecipientType: rt, Type: t}]; h != nil && h.Status == consent.StatusOnay {
			out = append(out, strings.TrimPrefix(r, "+")) // İYS's form may differ from ours
		}
	}
	return out, nil
}

func (f *fakeIYS) ConsentStatus(_ context.Context, _, _ string, q iysclient.StatusQuery) (*iysclient.Record, error) {
	k := consent.Key{Recipient: q.Recipient, RecipientType: q.RecipientType, Type: q.Type}
	f.lookups = append(f.lookups, k)
	h := f.current[k]
	if h == nil {
		return nil, fmt.Errorf("consent status: %w", iysclient.ErrNoRecord)
	}
	return &iysclient.Record{Recipient: q.Recipient, RecipientType: q.RecipientType, Type: q.Type, Status: h.Status,
		Source: h.Source, ConsentDate: h.ConsentDate, CreationDate: h.CreationDate, TransactionID: h.TransactionID}, nil
}

type env struct {
	t    *testing.T
	st   *store.Store
	db   *sql.DB
	conn consent.ConnectorRef
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
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: "600001", IYSCode: "700001",
		Channels: []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta}, FirstSyncAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, db: db, conn: consent.ConnectorRef{ID: c.ID, BrandCode: c.BrandCode, IYSCode: c.IYSCode, Active: true}}
}

// record stores one record of ours in the given state: imported, then set
// as the engine or the pull would leave it.
func (e *env) record(k consent.Key, st consent.Status, when string, src consent.Source, state consent.State, outcome consent.Outcome, syncedAt string) {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.st.ImportFile(ctx, e.conn.ID, func() store.ImportMeta {
		return store.ImportMeta{Path: "t.txt", Channel: "sms", Lines: 1, Valid: 1}
	}, func(emit func(store.ImportRow) error) error {
		return emit(store.ImportRow{Line: 1, Recipient: k.Recipient, RecipientType: k.RecipientType, Type: k.Type,
			Status: st, ConsentDate: at(when), Source: src})
	}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var synced any
	if syncedAt != "" {
		synced = at(syncedAt).Time()
	} else if state == consent.StateSynced {
		synced = at("09:00").Time().AddDate(0, 0, -3)
	}
	var out any
	if outcome != "" {
		out = string(outcome)
	}
	if _, err := e.db.ExecContext(ctx, `UPDATE consents SET state = $2, outcome = $3, synced_at = $4, transaction_id = 'tx'
		WHERE connector_id = $1 AND recipient = $5`, e.conn.ID, string(state), out, synced, k.Recipient); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) get(k consent.Key) store.Record {
	e.t.Helper()
	var out *store.Record
	err := e.st.RecordsOfKeys(context.Background(), e.conn.ID, []consent.Key{k}, func(r store.Record) error {
		out = &r
		return nil
	})
	if err != nil || out == nil {
		e.t.Fatalf("record %s: %v", k.Recipient, err)
	}
	return *out
}

const fileHead = "consentDate,creationDate,source,recipient,recipientType,status,type,transactionId\n"

func fileLine(k consent.Key, st consent.Status, when string, src consent.Source) string {
	d := at(when).String()
	return strings.Join([]string{d, d, string(src), k.Recipient, string(k.RecipientType), string(st), string(k.Type), "t-" + k.Recipient}, ",") + "\n"
}

func summaryJSON(rows ...string) string { return `{"list":[` + strings.Join(rows, ",") + `]}` }

func TestRunFindsAndRepairs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const onay, ret = consent.StatusOnay, consent.StatusRet
	const synced, accepted = consent.StateSynced, consent.OutcomeAccepted
	web := consent.SourceWeb
	e.record(mesaj(1), onay, "09:00", web, synced, accepted, "09:01")                        // in step
	e.record(mesaj(2), onay, "09:00", web, synced, accepted, "09:01")                        // a citizen's RET after it
	e.record(mesaj(3), onay, "09:00", web, synced, accepted, "09:01")                        // İYS forgot it
	e.record(mesaj(4), onay, "09:00", "IYS_WEB", synced, consent.OutcomeFromIYS, "")         // İYS forgot a citizen's
	e.record(mesaj(5), onay, "09:00", web, synced, accepted, "09:01")                        // İYS holds RET at the same date
	e.record(mesaj(7), onay, "09:00", web, synced, accepted, "23:59")                        // recorded the day before, per İYS
	e.record(mesaj(8), ret, "10:00", web, consent.StatePending, "", "")                      // ours newer, unsent
	e.record(mesaj(9), onay, "09:00", web, consent.StateRejected, consent.OutcomeTooOld, "") // none of this day's business
	e.record(mesaj(10), onay, "09:00", web, synced, accepted, "")                            // synced days ago
	fake := &fakeIYS{
		file: fileHead + fileLine(mesaj(1), onay, "09:00", web) + fileLine(mesaj(2), onay, "09:00", web) +
			fileLine(mesaj(3), onay, "09:00", web) + fileLine(mesaj(4), onay, "09:00", "IYS_WEB") +
			fileLine(mesaj(5), ret, "09:00", web) + fileLine(mesaj(6), onay, "10:00", "IYS_WEB") +
			fileLine(mesaj(8), onay, "08:00", web) + fileLine(mesaj(2), ret, "11:00", "IYS_MOBIL"),
		summaries: map[consent.RecipientType]string{
			consent.Bireysel: summaryJSON(`{"type":"MESAJ","source":"HS_WEB","onay":4,"ret":1,"total":5}`,
				`{"type":"MESAJ","source":"IYS_WEB","onay":2,"ret":0,"total":2}`,
				`{"type":"MESAJ","source":"IYS_MOBIL","onay":0,"ret":1,"total":1}`),
			consent.Tacir: summaryJSON(),
		},
		current: map[consent.Key]*Held{
			mesaj(1):  held(onay, "09:00", web),
			mesaj(2):  held(ret, "11:00", "IYS_MOBIL"),
			mesaj(5):  held(ret, "09:00", web),
			mesaj(6):  held(onay, "10:00", "IYS_WEB"),
			mesaj(7):  held(onay, "09:00", web),
			mesaj(8):  held(onay, "08:00", web),
			mesaj(9):  held(ret, "08:00", web),
			mesaj(10): held(ret, "08:00", web),
		},
	}
	rep, err := Run(ctx, fake, e.st, e.conn, testDay, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, fmt.Sprintf("%s:%s", f.Kind, f.Key.Recipient[len(f.Key.Recipient)-2:]))
	}
	want := []string{"missing_here:06", "status_differs:02", "status_differs:05", "only_here_synced:03", "only_here_synced:04", "ours_newer_unsent:08"}
	if !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	var looked []string
	for _, k := range fake.lookups {
		looked = append(looked, k.Recipient[len(k.Recipient)-2:])
	}
	if rep.FileRows != 8 || rep.Records != 8 || rep.LookedUp != 4 || strings.Join(looked, " ") != "03 04 05 07" ||
		!slices.Equal(fake.lists, []int{8}) || len(rep.SummaryMismatch) != 0 || rep.Drift() != 5 || rep.Clean(false) {
		t.Fatalf("report %+v, lookups %v, lists %v", rep, looked, fake.lists)
	}
	if k := rep.Kinds(); len(k) != len(Kinds) || k[OursNewerRejected] != 0 || k[StatusDiffers] != 2 {
		t.Errorf("kinds %v", k)
	}
	before := e.get(mesaj(2))
	if before.Status != onay || before.Version != 1 {
		t.Fatalf("a run without repair changed a record: %+v", before)
	}

	rep, err = Run(ctx, fake, e.st, e.conn, testDay, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	// m2 and m6 take İYS's record; m3 goes back to pending. m4 (a citizen's
	// source, which we cannot send) and m5 (a tie: newest-wins keeps ours)
	// are left.
	if rep.Repaired != 3 || rep.Unrepaired != 2 || rep.Clean(true) {
		t.Fatalf("repair: repaired %d, unrepaired %d", rep.Repaired, rep.Unrepaired)
	}
	if r := e.get(mesaj(2)); r.Status != ret || r.Source != "IYS_MOBIL" || r.State != synced || r.Outcome.V != consent.OutcomeFromIYS ||
		r.Version != 2 || !r.ConsentDate.Equal(at("11:00")) {
		t.Errorf("m2 after repair: %+v", r)
	}
	if r := e.get(mesaj(6)); r.Status != onay || r.Source != "IYS_WEB" || r.Outcome.V != consent.OutcomeFromIYS || r.TransactionID.String != "t-"+mesaj(6).Recipient {
		t.Errorf("m6 after repair: %+v", r)
	}
	if r := e.get(mesaj(3)); r.State != consent.StatePending || r.Outcome.Valid || r.SyncedAt.Valid || r.TransactionID.Valid || r.Version != 1 {
		t.Errorf("m3 after repair: %+v", r)
	}
	for _, i := range []int{4, 5} {
		if r := e.get(mesaj(i)); r.State != synced || r.Version != 1 || r.Status != onay {
			t.Errorf("m%d changed: %+v", i, r)
		}
	}
	if cur, err := e.st.PullCursors(ctx, e.conn.ID); err != nil || len(cur) != 0 {
		t.Errorf("the repair touched the pull cursors: %v %v", cur, err)
	}

	// What is left: the two the repair could not change.
	rep, err = Run(ctx, fake, e.st, e.conn, testDay, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, f := range rep.Findings {
		got = append(got, fmt.Sprintf("%s:%s", f.Kind, f.Key.Recipient[len(f.Key.Recipient)-2:]))
	}
	if !slices.Equal(got, []string{"status_differs:05", "only_here_synced:04", "ours_newer_unsent:08"}) {
		t.Errorf("after repair: %v", got)
	}
}

func TestRunComparesTheSummary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(mesaj(1), consent.StatusOnay, "09:00", consent.SourceWeb, consent.StateSynced, consent.OutcomeAccepted, "09:01")
	e.record(mesaj(2), consent.StatusOnay, "09:00", consent.SourceWeb, consent.StateSynced, consent.OutcomeAccepted, "09:01")
	fake := &fakeIYS{
		file: fileHead + fileLine(mesaj(1), consent.StatusOnay, "09:00", consent.SourceWeb) +
			fileLine(mesaj(2), consent.StatusOnay, "09:00", consent.SourceWeb),
		summaries: map[consent.RecipientType]string{
			consent.Bireysel: summaryJSON(`{"type":"MESAJ","source":"HS_WEB","onay":1,"ret":0,"total":1}`),
			consent.Tacir:    `<html>not json</html>`,
		},
		current: map[consent.Key]*Held{
			mesaj(1): held(consent.StatusOnay, "09:00", consent.SourceWeb),
			mesaj(2): held(consent.StatusOnay, "09:00", consent.SourceWeb),
		},
	}
	rep, err := Run(context.Background(), fake, e.st, e.conn, testDay, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rep.SummaryMismatch {
		got = append(got, fmt.Sprintf("%s %d~%d", m.Against, m.Summary, m.Counted))
	}
	if rep.Drift() != 0 || rep.Repaired != 0 || !slices.Equal(got, []string{"file 1~2", "ours 1~2"}) ||
		rep.SummaryUnread[consent.Tacir] == "" || len(rep.SummaryUnread) != 1 || rep.Clean(true) {
		t.Errorf("mismatches %v, unread %v, report %+v", got, rep.SummaryUnread, rep)
	}
}

func TestRunAsksInBulkByTheThousand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b strings.Builder
	b.WriteString(fileHead)
	current := map[consent.Key]*Held{}
	for i := 0; i < 1001; i++ {
		b.WriteString(fileLine(mesaj(i), consent.StatusOnay, "09:00", "IYS_WEB"))
		current[mesaj(i)] = held(consent.StatusOnay, "09:00", "IYS_WEB")
	}
	email := consent.Key{Recipient: "a@example.com", RecipientType: consent.Bireysel, Type: consent.TypeEposta}
	b.WriteString(fileLine(email, consent.StatusRet, "09:00", "IYS_WEB"))
	current[email] = held(consent.StatusRet, "09:00", "IYS_WEB")
	fake := &fakeIYS{file: b.String(), current: current,
		summaries: map[consent.RecipientType]string{consent.Bireysel: summaryJSON(
			`{"type":"MESAJ","source":"IYS_WEB","onay":1001,"ret":0,"total":1001}`,
			`{"type":"EPOSTA","source":"IYS_WEB","onay":0,"ret":1,"total":1}`), consent.Tacir: summaryJSON()}}
	rep, err := Run(context.Background(), fake, e.st, e.conn, testDay, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Keys come sorted by recipient type and type: EPOSTA first.
	if !slices.Equal(fake.lists, []int{1, 1000, 1}) || len(fake.lookups) != 0 || rep.Kinds()[MissingHere] != 1002 ||
		rep.Repaired != 1002 || len(rep.SummaryMismatch) != 0 {
		t.Fatalf("lists %v, lookups %d, kinds %v, repaired %d, mismatches %v", fake.lists, len(fake.lookups), rep.Kinds(), rep.Repaired, rep.SummaryMismatch)
	}
}

func TestResendIsGuarded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.record(mesaj(1), consent.StatusOnay, "09:00", consent.SourceWeb, consent.StateSynced, consent.OutcomeAccepted, "09:01")
	e.record(mesaj(2), consent.StatusOnay, "09:00", consent.SourceWeb, consent.StatePending, "", "")
	e.record(mesaj(3), consent.StatusOnay, "09:00", "IYS_WEB", consent.StateSynced, consent.OutcomeFromIYS, "")
	r1, r2, r3 := e.get(mesaj(1)), e.get(mesaj(2)), e.get(mesaj(3))
	n, err := e.st.Resend(ctx, e.conn.ID, []store.RecordVersion{{ID: r1.ID, Version: r1.Version + 1}, {ID: r2.ID, Version: r2.Version}, {ID: r3.ID, Version: r3.Version}})
	if err != nil || n != 0 {
		t.Fatalf("stale version, pending, citizen's source: %d changed, %v", n, err)
	}
	if n, err := e.st.Resend(ctx, e.conn.ID+1, []store.RecordVersion{{ID: r1.ID, Version: r1.Version}}); err != nil || n != 0 {
		t.Fatalf("another connector's: %d changed, %v", n, err)
	}
	if n, err := e.st.Resend(ctx, e.conn.ID, []store.RecordVersion{{ID: r1.ID, Version: r1.Version}}); err != nil || n != 1 {
		t.Fatalf("resend: %d changed, %v", n, err)
	}
	if r := e.get(mesaj(1)); r.State != consent.StatePending || r.Outcome.Valid || r.Attempts != 0 {
		t.Errorf("after resend: %+v", r)
	}
}
