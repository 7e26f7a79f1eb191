package reconcile

import (
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
)

var testDay = mustDay("2025-06-10")

func mustDay(s string) Day {
	d, err := ParseDay(s)
	if err != nil {
		panic(err)
	}
	return d
}

// at is a moment of the test day, "15:04".
func at(hm string) consent.Date {
	t, err := time.ParseInLocation("2006-01-02 15:04", testDay.String()+" "+hm, consent.Istanbul)
	if err != nil {
		panic(err)
	}
	return consent.NewDate(t)
}

func mesaj(i int) consent.Key {
	return consent.Key{Recipient: fmt.Sprintf("+90533000%04d", i), RecipientType: consent.Bireysel, Type: consent.TypeMesaj}
}

func held(st consent.Status, when string, src consent.Source) *Held {
	return &Held{Status: st, ConsentDate: at(when), Source: src, CreationDate: at(when)}
}

func fileChange(line int, st consent.Status, when string, src consent.Source) FileChange {
	return FileChange{Held: *held(st, when, src), Line: line}
}

func ours(st consent.Status, when string, state consent.State, outcome consent.Outcome, syncedAt string) Ours {
	o := Ours{ID: 1, Version: 1, Status: st, ConsentDate: at(when), Source: consent.SourceWeb, State: state, Outcome: outcome}
	if syncedAt != "" {
		o.SyncedAt = at(syncedAt).Time()
	}
	return o
}

func TestParseDay(t *testing.T) {
	t.Parallel()
	d := mustDay("2025-03-30")
	if d.Start.Format(time.RFC3339) != "2025-03-30T00:00:00+03:00" || d.End.Format(time.RFC3339) != "2025-03-31T00:00:00+03:00" {
		t.Errorf("day %v..%v", d.Start, d.End)
	}
	if !d.Contains(d.Start) || d.Contains(d.End) || !d.Contains(d.End.Add(-time.Second)) || d.String() != "2025-03-30" {
		t.Errorf("bounds of %s", d)
	}
	// 23:30 UTC on the 29th is already the 30th in Türkiye.
	if !d.Contains(time.Date(2025, 3, 29, 21, 30, 0, 0, time.UTC)) {
		t.Error("a UTC moment of the Türkiye day is outside it")
	}
	for _, bad := range []string{"", "30.03.2025", "2025-02-30", "2025-3-30"} {
		if _, err := ParseDay(bad); err == nil {
			t.Errorf("ParseDay(%q) accepted", bad)
		}
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	csv := "consentDate;creationDate;source;recipient;recipientType;status;type;transactionId\n" +
		"2025-06-10 09:00:00;2025-06-10 09:00:05;HS_WEB;905330000001;BIREYSEL;ONAY;MESAJ;t1\n" + // no +: normalised
		"2025-06-10 11:00:00;2025-06-10 11:00:00;IYS_MOBIL;+905330000001;BIREYSEL;RET;MESAJ;t2\n" + // later: wins
		"2025-06-10 08:00:00;2025-06-10 08:30:00;HS_WEB;+905330000002;BIREYSEL;ONAY;MESAJ;t3\n" +
		"2025-06-10 07:00:00;2025-06-10 08:00:00;HS_WEB;+905330000002;BIREYSEL;RET;MESAJ;t4\n" + // created earlier: loses
		"2025-06-10 10:00:00;2025-06-10 10:00:00;HS_EPOSTA;User@Example.COM;TACIR;ONAY;EPOSTA;t5\n" +
		"2025-06-10 10:00:00;2025-06-10 10:00:00;HS_WEB;05330000009;BIREYSEL;ONAY;MESAJ;t6\n" + // unreadable phone: counted, not compared
		"bad date;2025-06-10 10:00:00;HS_WEB;+905330000008;BIREYSEL;ONAY;MESAJ;t7\n" +
		"2025-06-10 10:00:00;2025-06-10 10:00:00;HS_WEB;+905330000007;BIREYSEL;MAYBE;MESAJ;t8\n"
	rows, err := iysclient.NewChangeFileReader(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(rows)
	if err != nil {
		t.Fatal(err)
	}
	if f.Rows != 8 || !slices.Equal(f.Unreadable, []int{7, 8, 9}) || len(f.Latest) != 3 {
		t.Fatalf("rows %d, unreadable %v, latest %v", f.Rows, f.Unreadable, f.Latest)
	}
	if c := f.Latest[mesaj(1)]; c.Status != consent.StatusRet || c.Source != "IYS_MOBIL" || c.Line != 3 || c.TransactionID != "t2" {
		t.Errorf("p1: %+v", c)
	}
	if c := f.Latest[mesaj(2)]; c.Status != consent.StatusOnay || c.Line != 4 {
		t.Errorf("p2: the later creation must win over the later line: %+v", c)
	}
	email := consent.Key{Recipient: "user@example.com", RecipientType: consent.Tacir, Type: consent.TypeEposta}
	if c, ok := f.Latest[email]; !ok || c.ConsentDate.String() != "2025-06-10 10:00:00" {
		t.Errorf("email not normalised: %v", f.Latest)
	}
	want := map[CountKey]int{
		{consent.Bireysel, consent.TypeMesaj, "HS_WEB", consent.StatusOnay}:      4,
		{consent.Bireysel, consent.TypeMesaj, "HS_WEB", consent.StatusRet}:       1,
		{consent.Bireysel, consent.TypeMesaj, "IYS_MOBIL", consent.StatusRet}:    1,
		{consent.Tacir, consent.TypeEposta, "HS_EPOSTA", consent.StatusOnay}:     1,
		{consent.Bireysel, consent.TypeMesaj, "HS_WEB", consent.Status("MAYBE")}: 1,
	}
	if !maps.Equal(f.Counts, want) {
		t.Errorf("counts %v, want %v", f.Counts, want)
	}
}

// TestCompareKinds is the table of kinds: our record against İYS's, from
// the file or looked up.
func TestCompareKinds(t *testing.T) {
	t.Parallel()
	const (
		onay, ret = consent.StatusOnay, consent.StatusRet
		synced    = consent.StateSynced
	)
	type tc struct {
		name     string
		file     *FileChange
		ours     *Ours
		lookedUp **Held // nil: not asked; &nil: İYS holds none
		want     Kind
	}
	p := func(o Ours) *Ours { return &o }
	f := func(c FileChange) *FileChange { return &c }
	none := (*Held)(nil)
	asked := func(h *Held) **Held { return &h }
	cases := []tc{
		{"in step", f(fileChange(2, onay, "09:00", "HS_WEB")), p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), nil, ""},
		{"missing here", f(fileChange(2, onay, "09:00", "IYS_WEB")), nil, nil, MissingHere},
		{"missing here, asked", f(fileChange(2, ret, "09:00", "IYS_WEB")), nil, asked(held(onay, "12:00", "IYS_WEB")), MissingHere},
		{"İYS forgot one we never had", f(fileChange(2, onay, "09:00", "IYS_WEB")), nil, asked(none), ""},
		{"citizen's newer change", f(fileChange(3, ret, "11:00", "IYS_MOBIL")), p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), nil, StatusDiffers},
		{"İYS newer than our pending", f(fileChange(3, ret, "11:00", "IYS_MOBIL")), p(ours(onay, "09:00", consent.StatePending, "", "")), nil, StatusDiffers},
		{"same date, other status", f(fileChange(3, ret, "09:00", "HS_WEB")), p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), nil, StatusDiffers},
		{"overwritten, looked up", f(fileChange(2, onay, "09:00", "HS_WEB")), p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), asked(held(ret, "12:00", "HS_WEB")), StatusDiffers},
		{"forgotten, looked up", f(fileChange(2, onay, "09:00", "HS_WEB")), p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), asked(none), OnlyHereSynced},
		{"forgotten, ours from İYS", f(fileChange(2, ret, "09:00", "IYS_WEB")), p(ours(ret, "09:00", synced, consent.OutcomeFromIYS, "")), asked(none), OnlyHereSynced},
		{"forgotten, ours pending", f(fileChange(2, onay, "09:00", "HS_WEB")), p(ours(onay, "09:00", consent.StatePending, "", "")), asked(none), ""},
		{"accepted that day, not in the file", nil, p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), asked(none), OnlyHereSynced},
		{"accepted, İYS holds older", f(fileChange(2, onay, "08:00", "HS_WEB")), p(ours(ret, "09:00", synced, consent.OutcomeAccepted, "09:01")), asked(held(onay, "08:00", "HS_WEB")), OnlyHereSynced},
		{"accepted just after midnight, İYS holds it", nil, p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), asked(held(onay, "09:00", "HS_WEB")), ""},
		{"not in the file, not asked: nothing proven", nil, p(ours(onay, "09:00", synced, consent.OutcomeAccepted, "09:01")), nil, ""},
		{"ours newer, pending", f(fileChange(2, onay, "08:00", "HS_WEB")), p(ours(ret, "09:00", consent.StatePending, "", "")), nil, OursNewerUnsent},
		{"ours newer, in flight", f(fileChange(2, onay, "08:00", "HS_WEB")), p(ours(ret, "09:00", consent.StateInFlight, "", "")), nil, OursNewerUnsent},
		{"ours newer, failed", f(fileChange(2, onay, "08:00", "HS_WEB")), p(ours(ret, "09:00", consent.StateFailed, "", "")), nil, OursNewerUnsent},
		{"ours newer, rejected", f(fileChange(2, onay, "08:00", "HS_WEB")), p(ours(ret, "09:00", consent.StateRejected, consent.OutcomeTooOld, "")), nil, OursNewerRejected},
		{"ours newer, synced later", f(fileChange(2, onay, "08:00", "HS_WEB")), p(ours(ret, "09:00", synced, consent.OutcomeAccepted, "")), nil, ""},
		{"already in İYS from before", f(fileChange(2, onay, "08:00", "HS_WEB")), p(ours(onay, "09:00", synced, consent.OutcomeAlreadyInIYS, "09:01")), nil, ""},
		{"already in İYS, but İYS newer", f(fileChange(2, onay, "10:00", "HS_WEB")), p(ours(onay, "09:00", synced, consent.OutcomeAlreadyInIYS, "09:01")), nil, StatusDiffers},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := mesaj(1)
			in := Input{Day: testDay, File: map[consent.Key]FileChange{}, Ours: map[consent.Key]Ours{}}
			if c.file != nil {
				in.File[k] = *c.file
			}
			if c.ours != nil {
				in.Ours[k] = *c.ours
			}
			lu := map[consent.Key]*Held{}
			if c.lookedUp != nil {
				lu[k] = *c.lookedUp
			}
			got := Compare(in, lu)
			if c.want == "" {
				if len(got) != 0 {
					t.Fatalf("in step, got %+v", got[0])
				}
				return
			}
			if len(got) != 1 || got[0].Kind != c.want || got[0].Key != k {
				t.Fatalf("got %+v, want %s", got, c.want)
			}
			g := got[0]
			if (g.Ours == nil) != (c.ours == nil) || g.LookedUp != (c.lookedUp != nil) {
				t.Errorf("finding %+v", g)
			}
			if c.file != nil && g.Line != c.file.Line || c.file == nil && g.Line != 0 {
				t.Errorf("line %d", g.Line)
			}
			if c.lookedUp != nil && g.IYS != *c.lookedUp || c.lookedUp == nil && (g.IYS == nil || *g.IYS != c.file.Held) {
				t.Errorf("İYS's side %+v", g.IYS)
			}
		})
	}
}

func TestCompareKeysOfInterestAndOrder(t *testing.T) {
	t.Parallel()
	in := Input{Day: testDay, File: map[consent.Key]FileChange{
		mesaj(3): fileChange(2, consent.StatusOnay, "09:00", "IYS_WEB"), // missing here
		mesaj(1): fileChange(3, consent.StatusRet, "11:00", "IYS_WEB"),  // status differs
	}, Ours: map[consent.Key]Ours{
		mesaj(1): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, "09:01"),
		mesaj(2): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, "09:01"), // of interest
		mesaj(4): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, ""),      // synced another day
		mesaj(5): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeFromIYS, "09:01"),  // not accepted
	}}
	in.Ours[mesaj(6)] = func() Ours {
		o := ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, "")
		o.SyncedAt = testDay.End // the next day's first moment
		return o
	}()
	if got := in.Keys(); !slices.Equal(got, []consent.Key{mesaj(1), mesaj(2), mesaj(3)}) {
		t.Fatalf("keys %v", got)
	}
	got := Compare(in, map[consent.Key]*Held{mesaj(2): nil, mesaj(4): nil})
	var kinds []string
	for _, f := range got {
		kinds = append(kinds, string(f.Kind)+":"+f.Key.Recipient[len(f.Key.Recipient)-1:])
	}
	if strings.Join(kinds, " ") != "missing_here:3 status_differs:1 only_here_synced:2" {
		t.Errorf("findings %v", kinds)
	}
}

func TestNeedsLookup(t *testing.T) {
	t.Parallel()
	const onay, ret = consent.StatusOnay, consent.StatusRet
	acc := func(st consent.Status, when string) Ours {
		return ours(st, when, consent.StateSynced, consent.OutcomeAccepted, "09:30")
	}
	cases := []struct {
		name       string
		file       *FileChange
		ours       *Ours
		onayNow    bool
		expectOnay bool
		want       bool
	}{
		{"file ONAY, İYS ONAY", &FileChange{Held: *held(onay, "09:00", "HS_WEB")}, nil, true, true, false},
		{"file ONAY, İYS not", &FileChange{Held: *held(onay, "09:00", "HS_WEB")}, nil, false, true, true},
		{"file RET, İYS not", &FileChange{Held: *held(ret, "09:00", "HS_WEB")}, nil, false, false, false},
		{"file RET, İYS ONAY", &FileChange{Held: *held(ret, "09:00", "HS_WEB")}, nil, true, false, true},
		{"ours accepted and listed last", &FileChange{Held: *held(onay, "09:00", "HS_WEB")}, ptr(acc(onay, "09:00")), true, true, false},
		{"ours accepted, a newer change listed", &FileChange{Held: *held(ret, "11:00", "IYS_WEB")}, ptr(acc(onay, "09:00")), false, false, false},
		{"ours accepted, an older one listed last", &FileChange{Held: *held(onay, "08:00", "HS_WEB")}, ptr(acc(ret, "09:00")), false, false, true},
		{"ours accepted, another status at its date", &FileChange{Held: *held(onay, "09:00", "HS_WEB")}, ptr(acc(ret, "09:00")), true, true, true},
		{"ours accepted, not listed", nil, ptr(acc(onay, "09:00")), true, true, true},
		{"ours synced another day, newer than the file's", &FileChange{Held: *held(onay, "08:00", "HS_WEB")},
			ptr(ours(ret, "09:00", consent.StateSynced, consent.OutcomeAccepted, "")), false, false, false},
		{"ours pending, newer: the file's is expected", &FileChange{Held: *held(onay, "08:00", "HS_WEB")},
			ptr(ours(ret, "09:00", consent.StatePending, "", "")), true, true, false},
	}
	for _, c := range cases {
		in := Input{Day: testDay, File: map[consent.Key]FileChange{}, Ours: map[consent.Key]Ours{}}
		if c.file != nil {
			in.File[mesaj(1)] = *c.file
		}
		if c.ours != nil {
			in.Ours[mesaj(1)] = *c.ours
		}
		if got := in.ExpectOnay(mesaj(1)); got != c.expectOnay {
			t.Errorf("%s: ExpectOnay %v", c.name, got)
		}
		if got := in.NeedsLookup(mesaj(1), c.onayNow); got != c.want {
			t.Errorf("%s: NeedsLookup %v, want %v", c.name, got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestAcceptedCounts(t *testing.T) {
	t.Parallel()
	in := Input{Day: testDay, File: map[consent.Key]FileChange{
		mesaj(1): fileChange(2, consent.StatusOnay, "09:00", "HS_WEB"),
		mesaj(3): fileChange(3, consent.StatusOnay, "08:00", "HS_WEB"),
	}, Ours: map[consent.Key]Ours{
		mesaj(1): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, "09:01"), // listed: counted
		mesaj(2): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, "09:01"), // İYS lacks it: counted
		mesaj(3): ours(consent.StatusRet, "09:00", consent.StateSynced, consent.OutcomeAccepted, "09:01"),  // recorded another day
		mesaj(4): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, "09:01"), // recorded another day
		mesaj(5): ours(consent.StatusOnay, "09:00", consent.StateSynced, consent.OutcomeAccepted, ""),      // synced another day
		mesaj(6): ours(consent.StatusRet, "09:00", consent.StatePending, "", ""),
	}}
	got := in.AcceptedCounts(map[consent.Key]*Held{
		mesaj(2): nil,
		mesaj(3): held(consent.StatusRet, "09:00", "HS_WEB"),
		mesaj(4): held(consent.StatusOnay, "09:00", "HS_WEB"),
	})
	want := map[CountKey]int{{consent.Bireysel, consent.TypeMesaj, consent.SourceWeb, consent.StatusOnay}: 2}
	if !maps.Equal(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

// dayFile writes a day file of rows lines on the fly, over keys distinct
// recipients, and every 10,000 rows measures the live heap: what reading it
// holds while it streams by.
type dayFile struct {
	rows, keys, line int
	buf              []byte
	base, peak       uint64
}

func (g *dayFile) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		switch {
		case g.line > g.rows:
			return 0, io.EOF
		case g.line == 0:
			g.base = liveHeap()
			g.buf = []byte("consentDate,creationDate,source,recipient,recipientType,status,type,transactionId\n")
		default:
			if g.line%10000 == 0 {
				g.peak = max(g.peak, liveHeap())
			}
			g.buf = fmt.Appendf(g.buf[:0], "2025-06-10 09:00:00,2025-06-10 09:%02d:%02d,IYS_MOBIL,+90533%07d,BIREYSEL,RET,MESAJ,tx%d\n",
				g.line/60%60, g.line%60, g.line%g.keys, g.line)
		}
		g.line++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// The daily file is read as it streams: ten times the rows (over the same
// keys) must not hold more memory. Reading it whole held about 1 KB a row.
func TestDayFileIsReadInFlatMemory(t *testing.T) {
	grow := func(rows int) (uint64, File) {
		g := &dayFile{rows: rows, keys: 1000}
		iys := &fakeIYS{}
		f, err := readDayFile(context.Background(), streamIYS{iys, g}, consent.ConnectorRef{BrandCode: "B1", IYSCode: "I1"}, testDay)
		if err != nil {
			t.Fatal(err)
		}
		if g.peak < g.base {
			return 0, f
		}
		return g.peak - g.base, f
	}
	small, f := grow(20_000)
	if f.Rows != 20_000 || len(f.Latest) != 1000 {
		t.Fatalf("read %d rows, %d keys: want 20000 rows of 1000 keys", f.Rows, len(f.Latest))
	}
	large, f := grow(200_000)
	if f.Rows != 200_000 {
		t.Fatalf("read %d rows, want 200000", f.Rows)
	}
	t.Logf("live heap while reading: %d KB over 20,000 rows, %d KB over 200,000", small>>10, large>>10)
	if large > small+4<<20 {
		t.Fatalf("reading 200,000 rows held %d KB, 20,000 rows %d KB: the file is kept in memory", large>>10, small>>10)
	}
}

// streamIYS serves the day file from a reader.
type streamIYS struct {
	*fakeIYS
	file io.Reader
}

func (s streamIYS) ChangeFile(context.Context, string, string, time.Time) (io.ReadCloser, error) {
	return io.NopCloser(s.file), nil
}
