package sync

import (
	"context"
	gosync "sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// connRun is one connector's run within an engine run. Fields after mu's
// comment are the scheduler's, guarded by roundRobin.mu; tally and the
// errors are written by one task at a time through done.
type connRun struct {
	ref consent.ConnectorRef
	// ctx is the run's, and also ends (with the cause) when the connector's
	// run lock is lost for good: its tasks run under it.
	ctx context.Context
	// lockInDoubt: the connector's run lock is being taken again; it
	// starts no task meanwhile.
	lockInDoubt *atomic.Bool
	runID       int64
	recover     bool // an earlier run left batches: recover them first
	log         *zap.Logger
	started     time.Time

	// claimPos is where the run's claims go on from (see consent.ClaimPos),
	// moved forward by every claim, back to the start by one that found
	// nothing after it.
	claimMu  gosync.Mutex
	claimPos consent.ClaimPos

	// guarded by roundRobin.mu
	ready     bool                     // recovery and pull are done
	preparing bool                     // the prep task is running
	recovered []consent.SubmittedBatch // batches of dead runs left to poll
	busy      int                      // tasks running
	pushes    int                      // push tasks running
	// hasWork: a claim of this connector found records since its last
	// empty one. Until one does, one push at a time probes it: an idle
	// connector costs one claim, not one per worker.
	hasWork  bool
	idle     bool // a claim found nothing due: evaluate once busy is 0
	evaluate bool // an evaluate task is wanted
	// evaluating: an evaluate task runs. No push may run beside it: a push
	// claiming the last pending record would let evaluate see nothing
	// pending and finish the connector with that record in flight.
	evaluating bool
	wakeAt     time.Time // nothing due before then
	finished   bool
	failed     error // stops the connector: configuration, our bug, the database
	pullErr    error
	tally      consent.Tally
}

func (c *connRun) claimFrom() consent.ClaimPos {
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	return c.claimPos
}

func (c *connRun) claimRestart() {
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	c.claimPos = consent.ClaimPos{}
}

// claimedUpTo moves the position to p if p is further: claims running at
// once end in any order.
func (c *connRun) claimedUpTo(p consent.ClaimPos) {
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	if q := c.claimPos; p.ConsentDate.After(q.ConsentDate) || (p.ConsentDate.Equal(q.ConsentDate) && p.ID > q.ID) {
		c.claimPos = p
	}
}

type taskKind int

const (
	taskPrep taskKind = iota
	taskRecover
	taskPush
	taskEvaluate
)

type task struct {
	kind  taskKind
	c     *connRun
	batch consent.SubmittedBatch
}

// taskResult is what a task tells the scheduler.
type taskResult struct {
	tally     consent.Tally
	claimed   bool // a push that claimed a batch
	fatal     error
	recovered []consent.SubmittedBatch
	pullErr   error
	finished  bool      // evaluate: nothing left to wait for
	wakeAt    time.Time // evaluate: wait for retries due then
}

// roundRobin hands out tasks round-robin over the connectors: each call of
// next serves the connector after the one served last, so every connector
// with work gets its turn whatever the size of the others.
type roundRobin struct {
	mu      gosync.Mutex
	conns   []*connRun
	cursor  int
	changed chan struct{} // closed and replaced on every change
}

func newRoundRobin(conns []*connRun) *roundRobin {
	s := &roundRobin{conns: conns, changed: make(chan struct{})}
	for _, c := range conns {
		// A connector stopped from outside (its lock lost) is a change.
		context.AfterFunc(c.ctx, s.poke)
	}
	return s
}

// poke wakes the workers waiting for a change.
func (s *roundRobin) poke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// next blocks until a task is ready, and returns nil when there is none
// left or ctx is done.
func (s *roundRobin) next(ctx context.Context) *task {
	s.mu.Lock()
	for {
		if ctx.Err() != nil {
			s.mu.Unlock()
			return nil
		}
		t, wake, left := s.pick()
		if t != nil {
			s.mu.Unlock()
			return t
		}
		if !left {
			s.mu.Unlock()
			return nil
		}
		changed := s.changed
		s.mu.Unlock()
		var timer <-chan time.Time
		var tm *time.Timer
		if !wake.IsZero() {
			tm = time.NewTimer(time.Until(wake))
			timer = tm.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer:
		}
		if tm != nil {
			tm.Stop()
		}
		s.mu.Lock()
	}
}

// pick finds the next task, round-robin; without one it tells the earliest
// wake-up and whether any connector is still going.
func (s *roundRobin) pick() (t *task, wake time.Time, left bool) {
	n := len(s.conns)
	now := time.Now()
	for i := range n {
		idx := (s.cursor + i) % n
		c := s.conns[idx]
		if c.finished {
			continue
		}
		if c.failed != nil || c.ctx.Err() != nil {
			if c.busy == 0 {
				c.finished = true
			} else {
				left = true
			}
			continue
		}
		left = true
		if c.lockInDoubt != nil && c.lockInDoubt.Load() {
			if soon := now.Add(busyPause); wake.IsZero() || soon.Before(wake) {
				wake = soon
			}
			continue
		}
		var kind taskKind
		var batch consent.SubmittedBatch
		switch {
		case !c.ready:
			if c.preparing {
				continue
			}
			c.preparing = true
			kind = taskPrep
		case len(c.recovered) > 0:
			batch = c.recovered[0]
			c.recovered = c.recovered[1:]
			kind = taskRecover
		case c.evaluate:
			c.evaluate = false
			c.evaluating = true
			kind = taskEvaluate
		case c.idle, c.evaluating:
			continue
		case now.Before(c.wakeAt):
			if wake.IsZero() || c.wakeAt.Before(wake) {
				wake = c.wakeAt
			}
			continue
		case c.pushes > 0 && !c.hasWork:
			continue // the push running tells whether there is work
		default:
			kind = taskPush
			c.pushes++
		}
		c.busy++
		s.cursor = idx + 1
		return &task{kind: kind, c: c, batch: batch}, time.Time{}, true
	}
	return nil, wake, left
}

// claimed hears from a push that its claim found records: the connector
// may take more pushes at once, before that one ends.
func (s *roundRobin) claimed(c *connRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.hasWork {
		return
	}
	c.hasWork = true
	close(s.changed)
	s.changed = make(chan struct{})
}

// done takes a task's result.
func (s *roundRobin) done(t *task, r taskResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := t.c
	c.busy--
	c.tally.Add(r.tally)
	if r.fatal != nil && c.failed == nil {
		c.failed = r.fatal
	}
	switch t.kind {
	case taskPrep:
		c.preparing = false
		c.ready = true
		c.recovered = append(c.recovered, r.recovered...)
		c.pullErr = r.pullErr
	case taskPush:
		c.pushes--
		if !r.claimed {
			c.idle = true
			c.hasWork = false
		}
	case taskEvaluate:
		c.evaluating = false
		switch {
		case r.finished:
			c.finished = true
		case !r.wakeAt.IsZero():
			c.wakeAt = r.wakeAt
		}
	}
	if c.idle && c.busy == 0 && !c.finished {
		c.idle = false
		c.evaluate = true
	}
	close(s.changed)
	s.changed = make(chan struct{})
}
