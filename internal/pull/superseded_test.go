package pull

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestRefreshSupersededToWhatIYSHolds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	held := consent.NewDate(time.Now().Add(-time.Hour))
	for _, p := range []string{phone(1), phone(2)} {
		// İYS holds an ONAY newer than our RET: İYS answered H178 to ours.
		if _, err := e.client.AddConsent(ctx, "700001", "600001", consent.Consent{Recipient: p, RecipientType: consent.Bireysel,
			Type: consent.TypeMesaj, Status: consent.StatusOnay, ConsentDate: held, Source: consent.SourceMobil}); err != nil {
			t.Fatal(err)
		}
		e.importOne(p, consent.StatusRet, time.Now().Add(-2*time.Hour))
	}
	for _, p := range []string{phone(1), phone(2)} {
		rec := e.record(p)
		if _, err := e.db.Exec(`UPDATE consents SET state = 'rejected', outcome = 'superseded', iys_code = 'H178' WHERE id = $1`, rec.ID); err != nil {
			t.Fatal(err)
		}
	}
	// One token in the bucket: one query now, the other waits for a later run.
	r := NewRefresher(e.st, e.client, nil, rate.NewLimiter(rate.Every(time.Hour), 1))
	n, err := r.Refresh(ctx, e.ref())
	if err != nil || n != 1 {
		t.Fatalf("Refresh = %d, %v; want 1 (the pace allows one)", n, err)
	}
	got := map[consent.Outcome]int{}
	for _, p := range []string{phone(1), phone(2)} {
		rec := e.record(p)
		got[rec.Outcome.V]++
		if rec.Outcome.V == consent.OutcomeFromIYS {
			if rec.Status != consent.StatusOnay || rec.Source != consent.SourceMobil || !rec.ConsentDate.Equal(held) ||
				rec.State != consent.StateSynced || rec.Version != 2 {
				t.Errorf("refreshed record %+v: want İYS's ONAY of %s from HS_MOBIL, synced, version 2", rec, held)
			}
		}
	}
	if got[consent.OutcomeFromIYS] != 1 || got[consent.OutcomeSuperseded] != 1 {
		t.Fatalf("outcomes %v", got)
	}
	if n, err := r.Refresh(ctx, e.ref()); err != nil || n != 0 {
		t.Fatalf("second Refresh at once = %d, %v: the pace allows none", n, err)
	}
}
