package sync_test

import (
	"context"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/source"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// routeChanges is the changes feed's route at the sandbox (a key of
// sandboxtest.Stats.Requests).
const routeChanges = "GET /sps/{iysCode}/brands/{brandCode}/consents/changes"

// countingStore is the store, counting the engine's calls by name.
type countingStore struct {
	*store.Store
	mu    gosync.Mutex
	calls map[string]int
}

func (s *countingStore) count(name string) {
	s.mu.Lock()
	s.calls[name]++
	s.mu.Unlock()
}

func (s *countingStore) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	clear(s.calls)
	return out
}

func (s *countingStore) StartRuns(ctx context.Context, ids []int64, t consent.Trigger) ([]consent.StartedRun, error) {
	s.count("StartRuns")
	return s.Store.StartRuns(ctx, ids, t)
}

func (s *countingStore) RecoverBatches(ctx context.Context, id int64) (int, []consent.SubmittedBatch, error) {
	s.count("RecoverBatches")
	return s.Store.RecoverBatches(ctx, id)
}

func (s *countingStore) ClaimBatchAfter(ctx context.Context, id, runID int64, size int, now time.Time, pos consent.ClaimPos) (int64, []consent.Record, error) {
	s.count("ClaimBatch")
	return s.Store.ClaimBatchAfter(ctx, id, runID, size, now, pos)
}

func (s *countingStore) Backlog(ctx context.Context, id int64, now time.Time) (consent.Backlog, error) {
	s.count("Backlog")
	return s.Store.Backlog(ctx, id, now)
}

func (s *countingStore) Backlogs(ctx context.Context, ids []int64, now time.Time) (map[int64]consent.Backlog, error) {
	s.count("Backlogs")
	return s.Store.Backlogs(ctx, ids, now)
}

func (s *countingStore) FinishRuns(ctx context.Context, ends []consent.RunEnd) ([]int64, error) {
	s.count("FinishRuns")
	return s.Store.FinishRuns(ctx, ends)
}

// An idle connector (nothing pending, nothing new at İYS) costs a run its
// two pull requests and nothing else at İYS, counted by the sandbox; the
// login is the API user's, once for all connectors and kept for the next
// run. In the database, the runs start and end in one statement each for
// all the connectors, and none is recovered that has nothing to recover.
func TestIdleConnectorMakesOnlyItsPullRequests(t *testing.T) {
	t.Parallel()
	const n = 6
	e := newEnv(t, sandbox.Options{})
	var conns []store.Connector
	for i := range n {
		conns = append(conns, e.install(fmt.Sprintf("IDLE%d", i)))
	}
	cs := &countingStore{Store: e.st, calls: map[string]int{}}
	puller := pull.New(e.st, e.client, e.log)
	puller.Refresher = pull.NewRefresher(e.st, e.client, e.log, nil)
	opts := e.fastOptions()
	opts.Puller = source.Chain{puller, source.New(e.st, nil, e.log)}
	eng, err := engine.New(cs, adapterOf(e), opts)
	if err != nil {
		t.Fatal(err)
	}

	for round := range 3 {
		before := e.sb.Admin.Stats()
		sum := e.run(eng, engine.RunRequest{})
		after := e.sb.Admin.Stats()
		for _, c := range conns {
			if s := connSummary(t, sum, c.BrandCode); s.Status != consent.RunCompleted || s.Pending != 0 || s.Sent != 0 {
				t.Fatalf("round %d, %s: %+v, want completed with nothing sent or left", round, c.BrandCode, s)
			}
		}
		for route, v := range after.Requests {
			d := v - before.Requests[route]
			switch {
			case route == routeChanges && d != 2*n:
				t.Errorf("round %d: %d requests of the changes feed for %d idle connectors, want %d", round, d, n, 2*n)
			case route == sandboxtest.RouteToken && round == 0 && d > 1:
				t.Errorf("round %d: %d token requests, want at most one for all connectors", round, d)
			case route == sandboxtest.RouteToken && round > 0 && d != 0:
				t.Errorf("round %d: %d token requests, want none (the token of the first run is kept)", round, d)
			case route != routeChanges && route != sandboxtest.RouteToken && d != 0:
				t.Errorf("round %d: %d requests of %s, want none from idle connectors", round, d, route)
			}
		}
		calls := cs.snapshot()
		want := map[string]int{"StartRuns": 1, "Backlogs": 1, "FinishRuns": 1, "ClaimBatch": n, "Backlog": n}
		for k, v := range want {
			if calls[k] != v {
				t.Errorf("round %d: %s called %d times, want %d (calls: %v)", round, k, calls[k], v, calls)
			}
		}
		if calls["RecoverBatches"] != 0 {
			t.Errorf("round %d: RecoverBatches called %d times for connectors no run left a batch", round, calls["RecoverBatches"])
		}
	}
	if got := e.countSQL(`SELECT count(*) FROM runs WHERE status = 'completed' AND finished_at IS NOT NULL`); got != 3*n {
		t.Fatalf("%d completed runs, want %d", got, 3*n)
	}
}

// overlapPuller is a Puller that holds each pull until want pulls are in
// flight at once (or a generous while passed), and keeps the most seen.
type overlapPuller struct {
	want     int32
	inFlight atomic.Int32
	most     atomic.Int32
	reached  chan struct{}
	once     gosync.Once
}

func (p *overlapPuller) Pull(ctx context.Context, _ consent.ConnectorRef, _ int64) error {
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.most.Load()
		if n <= m || p.most.CompareAndSwap(m, n) {
			break
		}
	}
	if n >= p.want {
		p.once.Do(func() { close(p.reached) })
	}
	select {
	case <-p.reached:
	case <-time.After(10 * time.Second): // serialized: it never comes
	case <-ctx.Done():
	}
	return nil
}

// Connectors' preparations (recovery and the pull) run at once, as many
// as the concurrency, and no more: nothing (a lock, a shared pacer)
// serializes them.
func TestPrepsOverlapUpToTheConcurrency(t *testing.T) {
	t.Parallel()
	const n, conc = 12, 4
	e := newEnv(t, sandbox.Options{})
	for i := range n {
		e.install(fmt.Sprintf("OVER%02d", i))
	}
	p := &overlapPuller{want: conc, reached: make(chan struct{})}
	opts := e.fastOptions()
	opts.Concurrency = conc
	opts.Puller = p
	sum := e.run(e.engine(opts, nil), engine.RunRequest{})
	for _, s := range sum.Connectors {
		if s.Status != consent.RunCompleted {
			t.Fatalf("%s: %+v", s.BrandCode, s)
		}
	}
	if got := p.most.Load(); got != conc {
		t.Fatalf("at most %d pulls ran at once, want %d (the concurrency)", got, conc)
	}
}
