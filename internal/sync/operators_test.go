package sync_test

import (
	"context"
	"testing"

	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// lockHook is the store with a step run just before the run locks are
// taken: what an operator does between a run's listing and its locks.
type lockHook struct {
	*store.Store
	before func()
}

func (h *lockHook) LockConnectors(ctx context.Context, ids []int64) (context.Context, []int64, func(), error) {
	if h.before != nil {
		h.before()
		h.before = nil
	}
	return h.Store.LockConnectors(ctx, ids)
}

// A connector paused or uninstalled after a run listed it, before it took
// its locks, is not served: the paused one is in the summary as paused, the
// uninstalled one is gone; the others are served.
func TestRunSkipsWhatWasPausedOrUninstalledAsItBegan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	served, paused, gone := e.install("SERVED"), e.install("PAUSED"), e.install("GONE")
	for i, c := range []store.Connector{served, paused, gone} {
		e.importRows(c, smsRows(i*10, 5))
	}
	ctx := context.Background()
	hook := &lockHook{Store: e.st, before: func() {
		if _, err := e.st.SetConnectorState(ctx, "PAUSED", store.ConnectorPaused); err != nil {
			t.Error(err)
		}
		if _, err := e.st.UninstallConnector(ctx, "GONE", false); err != nil {
			t.Error(err)
		}
	}}
	eng, err := engine.New(hook, adapterOf(e), e.fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	sum := e.run(eng, engine.RunRequest{})
	if len(sum.Connectors) != 2 {
		t.Fatalf("summary %+v: want SERVED and PAUSED", sum.Connectors)
	}
	if cs := connSummary(t, sum, "SERVED"); cs.Sent != 5 {
		t.Errorf("SERVED: %+v", cs)
	}
	if cs := connSummary(t, sum, "PAUSED"); !cs.Skipped || !cs.Paused || cs.RunID != 0 {
		t.Errorf("PAUSED: %+v", cs)
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE connector_id <> $1 AND state <> 'pending'`, served.ID); n != 0 {
		t.Errorf("%d records of the paused or uninstalled connectors were sent", n)
	}
	if n := e.countSQL(`SELECT count(*) FROM runs WHERE connector_id <> $1`, served.ID); n != 0 {
		t.Errorf("%d runs of the paused or uninstalled connectors", n)
	}
}
