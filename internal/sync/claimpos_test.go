package sync_test

import (
	"slices"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// TestClaimsGoOnFromTheirPositionThenCatchUp: a run's claims go on from
// where the last one ended (oldest consent first), not from the oldest
// pending record again, and once nothing is left after that position they
// start over: a record that appeared behind it (here an older consent
// imported mid-run) is sent in the same run, last.
func TestClaimsGoOnFromTheirPositionThenCatchUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.install("POS")
	rows := smsRows(0, 6) // row 0 newest: claimed 5 and 4, 3 and 2, 1 and 0
	e.importRows(c, rows)
	behind := store.ImportRow{Line: 1, Recipient: phone(100), RecipientType: consent.Bireysel,
		Type: consent.TypeMesaj, Status: consent.StatusOnay, Source: consent.SourceMesaj,
		ConsentDate: consent.NewDate(time.Now().Add(-2 * time.Hour))} // older than every row

	hook := &hookIYS{IYS: adapterOf(e)}
	hook.afterSubmit = func(n int, _ engine.Submission) {
		if n == 1 {
			e.importRows(c, []store.ImportRow{behind})
		}
	}
	opts := e.fastOptions()
	opts.BatchSize, opts.Concurrency = 2, 1
	sum := e.run(e.engine(opts, hook), engine.RunRequest{})

	want := [][]string{
		{rows[5].Recipient, rows[4].Recipient},
		{rows[3].Recipient, rows[2].Recipient},
		{rows[1].Recipient, rows[0].Recipient},
		{behind.Recipient},
	}
	hook.mu.Lock()
	sent := hook.sent
	hook.mu.Unlock()
	if !slices.EqualFunc(sent, want, slices.Equal) {
		t.Fatalf("sent %v, want %v: forward from the position, then the record behind it", sent, want)
	}
	if cs := connSummary(t, sum, c.BrandCode); cs.Status != consent.RunCompleted || cs.Sent != 7 || cs.Accepted != 7 {
		t.Fatalf("summary = %+v, want all 7 accepted in this run", cs)
	}
	if got := e.records(c)[key(behind)]; got.State != consent.StateSynced {
		t.Fatalf("the record behind the position is %s, want synced", got.State)
	}
}
