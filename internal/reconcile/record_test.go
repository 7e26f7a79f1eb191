package reconcile

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/store"
)

// brandsIYS is fakeIYS whose day file some brands cannot have: refused
// (403) or failing.
type brandsIYS struct {
	*fakeIYS
	refused, failing string
	files            map[string]int // day files asked for, by brand
}

func (b *brandsIYS) ChangeFile(ctx context.Context, iysCode, brandCode string, day time.Time) (io.ReadCloser, error) {
	b.files[brandCode]++
	switch brandCode {
	case b.refused:
		return nil, &iysclient.APIError{Status: http.StatusForbidden, Message: "no agreementControl"}
	case b.failing:
		return nil, errors.New("connection reset")
	}
	return b.fakeIYS.ChangeFile(ctx, iysCode, brandCode, day)
}

// Nightly reconciles each connector and keeps each outcome: done with its
// counts, refused (no right) or failed, none stopping the others. A day
// done in a mode is not done again in that mode, but is in repair; refused
// and failed ones are tried again.
func TestNightlyKeepsEachOutcome(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k := consent.Key{Recipient: "+905330000001", RecipientType: consent.Bireysel, Type: consent.TypeMesaj}
	e.record(k, consent.StatusOnay, "08:00", consent.Source("HS_WEB"), consent.StateSynced, consent.OutcomeAccepted, "")
	iys := &brandsIYS{fakeIYS: &fakeIYS{file: fileHead + fileLine(k, consent.StatusRet, "10:00", "IYS_MOBIL"),
		summaries: map[consent.RecipientType]string{consent.Bireysel: summaryJSON(), consent.Tacir: summaryJSON()},
		current:   map[consent.Key]*Held{k: {Status: consent.StatusRet, ConsentDate: at("10:00"), Source: "IYS_MOBIL"}}},
		refused: "600002", failing: "600003", files: map[string]int{}}
	cs := []consent.ConnectorRef{e.conn}
	for _, b := range []string{"600002", "600003"} {
		c, _, err := e.st.InstallConnector(ctx, store.Connector{BrandCode: b, IYSCode: "700001",
			Channels: []consent.Type{consent.TypeMesaj}, FirstSyncAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, consent.ConnectorRef{ID: c.ID, BrandCode: b, IYSCode: "700001", Active: true})
	}
	nightly := func(mode Mode) map[string]store.Reconcile {
		got := map[string]store.Reconcile{}
		Nightly(ctx, iys, e.st, cs, testDay, mode, nil, func(b string, r store.Reconcile) { got[b] = r })
		return got
	}

	got := nightly(ModeReport)
	if r := got["600001"]; r.Result != store.ReconcileDone || r.Mode != "report" || r.Trigger != "schedule" ||
		r.StatusDiffers != 1 || r.Unrepaired != 1 || r.Repaired != 0 || r.DayString() != testDay.String() || r.ID == 0 {
		t.Errorf("600001: %+v", r)
	}
	if r := got["600002"]; r.Result != store.ReconcileNoRight || !r.Error.Valid {
		t.Errorf("600002 (refused): %+v", r)
	}
	if r := got["600003"]; r.Result != store.ReconcileFailed || r.Error.String == "" {
		t.Errorf("600003 (failing): %+v", r)
	}
	if e.get(k).Status != consent.StatusOnay {
		t.Fatal("report mode changed the record")
	}
	for _, c := range cs {
		last, ok, err := e.st.LastReconcile(ctx, c.ID)
		if err != nil || !ok || last.Result != got[c.BrandCode].Result {
			t.Errorf("%s: last kept %+v (%v, %v), want %s", c.BrandCode, last, ok, err, got[c.BrandCode].Result)
		}
	}

	// Again in report: 600001 is done for the day; the others are tried again.
	got = nightly(ModeReport)
	if _, again := got["600001"]; again || iys.files["600001"] != 1 || iys.files["600002"] != 2 || iys.files["600003"] != 2 {
		t.Fatalf("second report night: %v, files asked %v", got, iys.files)
	}
	// In repair, 600001's day is done again, and repaired.
	got = nightly(ModeRepair)
	if r := got["600001"]; r.Result != store.ReconcileDone || r.Mode != "repair" || r.Repaired != 1 || r.Unrepaired != 0 {
		t.Fatalf("repair night: %+v", r)
	}
	if rec := e.get(k); rec.Status != consent.StatusRet || rec.Outcome.V != consent.OutcomeFromIYS {
		t.Fatalf("repair left the record: %+v", rec)
	}
	if got = nightly(ModeOff); len(got) != 0 {
		t.Fatalf("off reconciled: %v", got)
	}

	// The window over before a connector's turn: kept as failed, counted.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	got = map[string]store.Reconcile{}
	Nightly(ended, iys, e.st, cs[:1], testDay.Next(1), ModeReport, nil, func(b string, r store.Reconcile) { got[b] = r })
	last, _, err := e.st.LastReconcile(ctx, e.conn.ID)
	if r := got["600001"]; r.Result != store.ReconcileFailed || !strings.Contains(r.Error.String, "window ended") ||
		err != nil || last.ID != r.ID || last.DayString() != testDay.Next(1).String() {
		t.Fatalf("window over: %+v; kept %+v (%v)", r, last, err)
	}
}
