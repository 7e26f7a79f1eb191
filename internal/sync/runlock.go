package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// errLockTaken ends a connector's run whose lock was lost and that another
// run took before this one could take it again.
var errLockTaken = errors.New("run lock lost, and another run (process or replica) took this connector meanwhile: this run stops")

// retakeWait is how long a lock found held when taken again is asked for
// again before another run is said to hold it: the session that held it
// may not be gone yet (its connection was dropped because it answered too
// slowly, not because it died), and another run holds a lock for its
// whole run.
const (
	retakeWait  = 10 * time.Second
	retakePause = 500 * time.Millisecond
)

// runLocks holds the run locks of a run's connectors for the whole run.
// The store holds them on one connection; when that connection fails (the
// database restarted, the network dropped it) the locks are gone. Then
// runLocks takes them again, trying with backoff until the database
// answers or the run ends: a connector whose lock it gets back goes on as
// if nothing happened; one that another run took meanwhile is stopped
// through its context, cleanly (its batches in flight finish or are left
// for the next run's recovery), and the others go on.
//
// Between the loss and the new lock a connector starts nothing new (no
// claim, no recovery): its lock is in doubt. The tasks in flight go on (the
// database may be gone for everyone, as in a restart); another run that
// took the connector meanwhile does what a next run does after a crash
// (closes this run, recovers its batches by polling), and this run stops as
// soon as it finds out.
type runLocks struct {
	e *Engine

	ctxs  map[int64]context.Context // each locked connector's, see connector
	doubt map[int64]*atomic.Bool    // each locked connector's, see inDoubt

	mu      gosync.Mutex
	sets    []lockSet // the locks held now: one set, or more after a re-take in steps
	cancels map[int64]context.CancelCauseFunc

	stop context.CancelFunc
	done chan struct{}
}

// lockSet is what one Store.LockConnectors call holds.
type lockSet struct {
	held    context.Context
	release func()
}

// lockRun takes the run locks of the connectors ids, trying again while the
// database is out of reach, and reports which it got. Call close once the
// run is over.
func (e *Engine) lockRun(ctx context.Context, ids []int64) (*runLocks, []int64, error) {
	kctx, stop := context.WithCancel(ctx)
	set, locked, err := e.takeLocks(kctx, ids)
	if err != nil {
		stop()
		return nil, nil, err
	}
	l := &runLocks{e: e, sets: []lockSet{set}, ctxs: map[int64]context.Context{}, doubt: map[int64]*atomic.Bool{},
		cancels: map[int64]context.CancelCauseFunc{}, stop: stop, done: make(chan struct{})}
	for _, id := range locked {
		l.ctxs[id], l.cancels[id] = context.WithCancelCause(ctx)
		l.doubt[id] = new(atomic.Bool)
	}
	go l.keep(kctx, locked)
	return l, locked, nil
}

// takeLocks is Store.LockConnectors, tried again while the database is out
// of reach. Its held context is a child of ctx: not of a try's.
func (e *Engine) takeLocks(ctx context.Context, ids []int64) (lockSet, []int64, error) {
	var (
		set    lockSet
		locked []int64
	)
	err := e.retryDB(ctx, e.log, "take the run locks", func(context.Context) error {
		var err error
		set.held, locked, set.release, err = e.st.LockConnectors(ctx, ids)
		return err
	})
	return set, locked, err
}

// connector is the context of a locked connector's work: a child of the
// run's that ends when its lock is lost for good, with the cause.
func (l *runLocks) connector(id int64) context.Context { return l.ctxs[id] }

// inDoubt is true while a locked connector's lock is being taken again.
func (l *runLocks) inDoubt(id int64) *atomic.Bool { return l.doubt[id] }

func (l *runLocks) setDoubt(ids []int64, v bool) {
	for _, id := range ids {
		l.doubt[id].Store(v)
	}
}

// keep waits for the loss of the locks and takes them again, until the run
// ends.
func (l *runLocks) keep(ctx context.Context, ids []int64) {
	defer close(l.done)
	for {
		cause, ok := l.lost(ctx)
		if !ok {
			return
		}
		l.setDoubt(ids, true)
		l.e.log.Warn("run lock lost: taking it again once the database answers", zap.Int64s("connectors", ids),
			zap.NamedError("cause", cause))
		// Free the old session's locks first: if it lives on (a check that
		// timed out), they would keep this run from taking them again.
		l.releaseAll()
		got, err := l.retake(ctx, ids)
		if err != nil {
			if ctx.Err() == nil {
				l.e.log.Error("could not take the run lock again: the run stops", zap.Error(err))
				l.end(ids, fmt.Errorf("%w; taking it again failed: %w", cause, err))
			}
			return
		}
		var taken []int64
		for _, id := range ids {
			if !slices.Contains(got, id) {
				taken = append(taken, id)
			}
		}
		if len(taken) > 0 {
			l.e.log.Error("run lock lost to another run: those connectors stop", zap.Int64s("connectors", taken))
			l.end(taken, errLockTaken)
		}
		if len(got) > 0 {
			l.setDoubt(got, false)
			l.e.log.Info("run lock taken again", zap.Int64s("connectors", got))
		}
		ids = got
		if len(ids) == 0 {
			return
		}
	}
}

// lost waits until a lock set is lost, and tells why; ok is false when ctx
// ended first.
func (l *runLocks) lost(ctx context.Context) (cause error, ok bool) {
	l.mu.Lock()
	sets := slices.Clone(l.sets)
	l.mu.Unlock()
	first, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for _, s := range sets {
		stop := context.AfterFunc(s.held, func() { cancel(context.Cause(s.held)) })
		defer stop()
	}
	<-first.Done()
	if ctx.Err() != nil {
		return nil, false
	}
	return context.Cause(first), true
}

// retake takes the locks of ids again; one found held is asked for again
// for retakeWait, in case the session that held it is not gone yet.
func (l *runLocks) retake(ctx context.Context, ids []int64) (got []int64, err error) {
	deadline := time.Now().Add(retakeWait)
	missing := ids
	for {
		set, locked, err := l.e.takeLocks(ctx, missing)
		if err != nil {
			if len(got) > 0 && ctx.Err() == nil {
				err = nil // keep those got; the others count as taken
			}
			return got, err
		}
		if len(locked) > 0 {
			l.mu.Lock()
			l.sets = append(l.sets, set)
			l.mu.Unlock()
		} else {
			set.release()
		}
		got = append(got, locked...)
		missing = slices.DeleteFunc(slices.Clone(missing), func(id int64) bool { return slices.Contains(locked, id) })
		if len(missing) == 0 || time.Now().After(deadline) {
			return got, nil
		}
		t := time.NewTimer(retakePause)
		select {
		case <-ctx.Done():
			t.Stop()
			return got, ctx.Err()
		case <-t.C:
		}
	}
}

// releaseAll frees every lock held now.
func (l *runLocks) releaseAll() {
	l.mu.Lock()
	sets := l.sets
	l.sets = nil
	l.mu.Unlock()
	for _, s := range sets {
		s.release()
	}
}

// end stops the work of these connectors.
func (l *runLocks) end(ids []int64, cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if cancel := l.cancels[id]; cancel != nil {
			cancel(cause)
		}
	}
}

// close stops keeping the locks, frees them and ends the connectors'
// contexts.
func (l *runLocks) close() {
	l.stop()
	<-l.done
	l.releaseAll()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cancel := range l.cancels {
		cancel(context.Canceled)
	}
}
