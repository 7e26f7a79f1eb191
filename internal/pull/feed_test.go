package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/store"
)

func (e *env) cursors() map[string]store.PullCursor {
	e.t.Helper()
	cur, err := e.st.PullCursors(context.Background(), e.conn.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return cur
}

// İYS may answer fewer changes than the limit asked: the pull follows the
// cursor to the feed's end, never stopping at a short page.
func TestPullFollowsShortPagesToTheEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.withSandbox(sandbox.Options{Seed: 7, FeedPageCap: 100})
	const n = 1200
	for i := range n {
		e.citizen(phone(i), consent.TypeMesaj, consent.StatusRet, "IYS_MOBIL")
	}
	var pulled []string
	p := New(e.st, e.client, nil)
	p.Pulled = func(brand string, _ time.Time) { pulled = append(pulled, brand) }
	res, err := p.PullConnector(context.Background(), e.ref())
	if err != nil {
		t.Fatal(err)
	}
	// 12 full pages and the empty one that ends the citizens' side; one empty page of the brand's.
	if res.Changes != n || res.Applied != n || res.Pages != 12+1+1 {
		t.Fatalf("pull %+v: want all %d changes, in 14 pages", res, n)
	}
	ret := 0
	if err := e.st.ConsentsOf(context.Background(), e.conn.ID, store.Filter{}, func(r store.Record) error {
		if r.Status == consent.StatusRet && r.Outcome.V == consent.OutcomeFromIYS {
			ret++
		}
		return nil
	}); err != nil || ret != n {
		t.Fatalf("%d citizens' RETs in our records, %v; want %d", ret, err, n)
	}
	cur := e.cursors()
	if cur["IYS"].Applied != n || store.PullCompleteAt(cur).IsZero() || len(pulled) != 1 {
		t.Fatalf("cursors %+v, Pulled heard %v: want the feed's end recorded", cur, pulled)
	}
}

// scriptedFeed answers pages from a script, by call, and records the
// cursors it was sent.
type scriptedFeed struct {
	pages []iysclient.ChangesPage // for the IYS side; the HS side is empty
	sent  []string
}

func (f *scriptedFeed) Changes(_ context.Context, _, _ string, q iysclient.ChangesQuery) (*iysclient.ChangesPage, error) {
	if q.Source != iysclient.ChangesByCitizens {
		return &iysclient.ChangesPage{After: "hs"}, nil
	}
	f.sent = append(f.sent, q.After)
	if len(f.pages) == 0 {
		return &iysclient.ChangesPage{After: q.After}, nil
	}
	pg := f.pages[0]
	f.pages = f.pages[1:]
	return &pg, nil
}

func entry(i int) json.RawMessage {
	return json.RawMessage(strings.Replace(goodEntry, "+905331234562", phone(i), 1))
}

func entries(from, to int) []json.RawMessage {
	var out []json.RawMessage
	for i := from; i < to; i++ {
		out = append(out, entry(i))
	}
	return out
}

// The feed ends at an empty page, or where the cursor is missing or stops
// moving; not before.
func TestPullEndsWhereTheFeedDoes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		pages  []iysclient.ChangesPage
		read   int
		sent   []string
		stored string
	}{
		{"an empty page", []iysclient.ChangesPage{{After: "c1", Entries: entries(0, 2)}, {After: "c2", Entries: entries(2, 3)},
			{After: "c3"}, {After: "c4", Entries: entries(3, 4)}}, 3, []string{"", "c1", "c2"}, "c3"},
		{"no cursor", []iysclient.ChangesPage{{After: "c1", Entries: entries(0, 2)}, {Entries: entries(2, 3)},
			{After: "c3", Entries: entries(3, 4)}}, 3, []string{"", "c1"}, "c1"},
		{"the same cursor", []iysclient.ChangesPage{{After: "c1", Entries: entries(0, 2)}, {After: "c1", Entries: entries(1, 3)},
			{After: "c3", Entries: entries(3, 4)}}, 4, []string{"", "c1"}, "c1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			feed := &scriptedFeed{pages: tt.pages}
			p := New(e.st, feed, nil)
			p.PageSize = 2 // every page but the first is short of it
			res, err := p.PullConnector(context.Background(), e.ref())
			if err != nil {
				t.Fatal(err)
			}
			if res.Changes != tt.read || strings.Join(feed.sent, ",") != strings.Join(tt.sent, ",") {
				t.Fatalf("read %d changes sending cursors %q; want %d sending %q", res.Changes, feed.sent, tt.read, tt.sent)
			}
			if cur := e.cursors(); cur["IYS"].After != tt.stored || store.PullCompleteAt(cur).IsZero() {
				t.Fatalf("cursors %+v: want %q stored and the end recorded", cur, tt.stored)
			}
		})
	}
}

// endlessFeed never ends: each page holds a change and a new cursor.
type endlessFeed struct{ n int }

func (f *endlessFeed) Changes(_ context.Context, _, _ string, q iysclient.ChangesQuery) (*iysclient.ChangesPage, error) {
	f.n++
	return &iysclient.ChangesPage{After: fmt.Sprintf("c%d", f.n), Entries: entries(f.n, f.n+1)}, nil
}

func TestPullBoundsAFeedThatNeverEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := New(e.st, &endlessFeed{}, nil)
	p.MaxPages = 5
	_, err := p.PullConnector(context.Background(), e.ref())
	if err == nil || !strings.Contains(err.Error(), "did not end after 5 pages") {
		t.Fatalf("err = %v, want the bound named", err)
	}
	cur := e.cursors()
	if cur["IYS"].After != "c5" || cur["IYS"].Applied != 5 || !cur["IYS"].CompleteAt.IsZero() {
		t.Fatalf("cursor %+v: want the 5 pages stored and the end not recorded", cur["IYS"])
	}
}

// A page with entries that cannot be read applies the rest and keeps those
// in quarantine, raw, with their reasons, in the page's transaction.
func TestPullQuarantinesWhatItCannotRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := map[string]func(map[string]any){
		phone(2): func(m map[string]any) { m["consentDate"] = "15.05.2025 14:23" },
		phone(3): func(m map[string]any) { delete(m, "type") },
		phone(4): func(m map[string]any) { m["source"] = "IYS_YENI_KANAL" }, // unknown, applied
	}
	e.withSandbox(sandbox.Options{Seed: 7, FeedEntry: func(_, _ string, m map[string]any) {
		if f := bad[m["recipient"].(string)]; f != nil {
			f(m)
		}
	}})
	for i := 1; i <= 5; i++ {
		e.citizen(phone(i), consent.TypeMesaj, consent.StatusRet, "IYS_WEB")
	}
	var counted int
	p := New(e.st, e.client, nil)
	p.Quarantined = func(_ string, n int) { counted += n }
	res, err := p.PullConnector(context.Background(), e.ref())
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 5 || res.Applied != 3 || res.Quarantined != 2 || counted != 2 {
		t.Fatalf("pull %+v, metric %d: want 5 read, 3 applied, 2 quarantined", res, counted)
	}
	if r := e.record(phone(4)); r.Source != "IYS_YENI_KANAL" || r.Status != consent.StatusRet {
		t.Errorf("the change from an unknown source: %+v", r)
	}
	rows, err := e.db.Query("SELECT source, raw, reason FROM pull_quarantine WHERE connector_id = $1 ORDER BY raw", e.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var src, raw, reason string
		if err := rows.Scan(&src, &raw, &reason); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil || src != "IYS" {
			t.Fatalf("quarantined %s %q: want İYS's JSON: %v", src, raw, err)
		}
		got = append(got, m["recipient"].(string)+" "+reason)
	}
	want := []string{phone(2) + " consentDate: not in İYS's layout YYYY-MM-DD HH:MM:SS", phone(3) + " type: missing"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("quarantine %q, want %q", got, want)
	}
	var applied int
	if err := e.db.QueryRow("SELECT count(*) FROM consents WHERE recipient IN ($1, $2)", phone(2), phone(3)).Scan(&applied); err != nil || applied != 0 {
		t.Fatalf("%d quarantined changes applied, %v", applied, err)
	}
	if n, err := e.st.QuarantinedChanges(context.Background(), e.conn.ID); err != nil || n != 2 {
		t.Fatalf("QuarantinedChanges = %d, %v", n, err)
	}
	// Read again from the start, the same entries are held once.
	if _, err := e.st.ResetPullCursors(context.Background(), e.conn.ID); err != nil {
		t.Fatal(err)
	}
	if res, err := p.PullConnector(context.Background(), e.ref()); err != nil || res.Quarantined != 2 {
		t.Fatalf("second pull %+v, %v", res, err)
	}
	if n, _ := e.st.QuarantinedChanges(context.Background(), e.conn.ID); n != 2 {
		t.Fatalf("%d held after reading them twice, want 2", n)
	}
}

// The watchdog counts from the last pull that reached the feed's end: one
// that fails on the way leaves it red.
func TestWatchdogStaysRedAfterAPullFailedMidFeed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for i := range 12 {
		e.citizen(phone(i), consent.TypeMesaj, consent.StatusOnay, "IYS_WEB")
	}
	p := New(e.st, e.client, nil)
	p.PageSize = 5
	if _, err := p.PullConnector(ctx, e.ref()); err != nil {
		t.Fatal(err)
	}
	// That pull was 8 days ago; since then, more changes.
	if _, err := e.db.Exec("UPDATE pull_cursors SET complete_at = now() - interval '8 days'"); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 112; i++ {
		e.citizen(phone(i), consent.TypeMesaj, consent.StatusOnay, "IYS_WEB")
	}
	var pulled int
	p = New(e.st, &failingFeed{Feed: e.client, failAt: 2}, nil)
	p.PageSize = 5
	p.Pulled = func(string, time.Time) { pulled++ }
	if _, err := p.PullConnector(ctx, e.ref()); err == nil {
		t.Fatal("the pull went on past a failed page")
	}
	cur := e.cursors()
	if cur["IYS"].Applied != 12+5 || time.Since(cur["IYS"].PulledAt) > time.Minute {
		t.Fatalf("cursor %+v: want the first page stored", cur["IYS"])
	}
	if _, level := Lag(store.PullCompleteAt(cur), time.Time{}, time.Now()); level != LagLost || pulled != 0 {
		t.Fatalf("after a failed pull: lag level %d, Pulled heard %d; want changes lost, nothing heard", level, pulled)
	}
	p = New(e.st, e.client, nil)
	p.Pulled = func(string, time.Time) { pulled++ }
	if _, err := p.PullConnector(ctx, e.ref()); err != nil {
		t.Fatal(err)
	}
	if _, level := Lag(store.PullCompleteAt(e.cursors()), time.Time{}, time.Now()); level != LagOK || pulled != 1 {
		t.Fatalf("after a pull to the end: lag level %d, Pulled heard %d", level, pulled)
	}
}

// A cursor İYS refuses says what to do, on every pull, until it is reset;
// a refusal that is not about the cursor does not.
func TestRejectedCursorAndItsReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.citizen(phone(1), consent.TypeMesaj, consent.StatusRet, "IYS_WEB")
	p := New(e.st, e.client, nil)
	if _, err := p.PullConnector(ctx, e.ref()); err != nil {
		t.Fatal(err)
	}
	// İYS no longer knows the stored cursor (here: another brand's).
	if _, err := e.db.Exec("UPDATE pull_cursors SET after = '1604423100000_00' WHERE source = 'IYS'"); err != nil {
		t.Fatal(err)
	}
	e.citizen(phone(2), consent.TypeMesaj, consent.StatusRet, "IYS_WEB")
	for range 2 {
		_, err := p.PullConnector(ctx, e.ref())
		if !errors.Is(err, ErrCursorRejected) || !strings.Contains(err.Error(), "iys-sync pull --brand-code 600001 --reset-cursor") ||
			!strings.Contains(err.Error(), "HTTP 400") {
			t.Fatalf("err = %v, want the refused cursor and the way out", err)
		}
	}
	if n, err := e.st.ResetPullCursors(ctx, e.conn.ID); err != nil || n != 2 {
		t.Fatalf("ResetPullCursors = %d, %v; want both sources", n, err)
	}
	res, err := p.PullConnector(ctx, e.ref())
	if err != nil || res.Changes != 2 || res.Applied != 1 {
		t.Fatalf("after the reset: %+v, %v; want both changes read again, the new one applied", res, err)
	}
	if r := e.record(phone(2)); r.Status != consent.StatusRet || r.Version != 1 {
		t.Fatalf("%+v", r)
	}
	if r := e.record(phone(1)); r.Version != 1 {
		t.Fatalf("a change read again was applied twice: %+v", r)
	}
	// No reconciliation right: a 403 with a cursor is not the cursor's fault.
	if _, err := e.db.Exec("UPDATE pull_cursors SET after = 'x'"); err != nil {
		t.Fatal(err)
	}
	e.withSandbox(sandbox.Options{Seed: 7, Rights: []sandbox.RightRule{{Right: sandbox.RightAgreementControl, Granted: false}}})
	if _, err := New(e.st, e.client, nil).PullConnector(ctx, e.ref()); err == nil || errors.Is(err, ErrCursorRejected) {
		t.Fatalf("a 403: %v", err)
	}
}
