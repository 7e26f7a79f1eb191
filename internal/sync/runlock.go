package sync

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"

	"go.uber.org/zap"
)

// errLockTaken ends a connector's run whose lock was lost and that another
// run took before this one could take it again.
var errLockTaken = errors.New("run lock lost, and another run (process or replica) took this connector meanwhile: this run stops")

// runLocks holds the run locks of a run's connectors for the whole run.
// The store holds them on one connection; when that connection fails (the
// database restarted, the network dropped it) the locks are gone. Then
// runLocks takes them again, trying with backoff until the database
// answers or the run ends: a connector whose lock it gets back goes on as
// if nothing happened; one that another run took meanwhile is stopped
// through its context, cleanly (its batches in flight finish or are left
// for the next run's recovery), and the others go on.
//
// Between the loss and the new lock a connector's work goes on: the
// database was gone for everyone (a restart) or the lock's own connection
// broke (the rest is fine); another run that took the connector meanwhile
// does what a next run does after a crash (closes this run, recovers its
// batches by polling), and this run stops as soon as it finds out.
type runLocks struct {
	e *Engine

	ctxs map[int64]context.Context // each locked connector's, see connector

	mu      gosync.Mutex
	release func() // frees the locks held now
	cancels map[int64]context.CancelCauseFunc

	stop context.CancelFunc
	done chan struct{}
}

// lockRun takes the run locks of the connectors ids, trying again while the
// database is out of reach, and reports which it got. Call close once the
// run is over.
func (e *Engine) lockRun(ctx context.Context, ids []int64) (*runLocks, []int64, error) {
	kctx, stop := context.WithCancel(ctx)
	held, locked, release, err := e.takeLocks(kctx, ids)
	if err != nil {
		stop()
		return nil, nil, err
	}
	l := &runLocks{e: e, release: release, ctxs: map[int64]context.Context{},
		cancels: map[int64]context.CancelCauseFunc{}, stop: stop, done: make(chan struct{})}
	for _, id := range locked {
		l.ctxs[id], l.cancels[id] = context.WithCancelCause(ctx)
	}
	go l.keep(kctx, held, locked)
	return l, locked, nil
}

// takeLocks is Store.LockConnectors, tried again while the database is out
// of reach. Its held context is a child of ctx: not of a try's.
func (e *Engine) takeLocks(ctx context.Context, ids []int64) (held context.Context, locked []int64, release func(), err error) {
	err = e.retryDB(ctx, e.log, "take the run locks", func(context.Context) error {
		var err error
		held, locked, release, err = e.st.LockConnectors(ctx, ids)
		return err
	})
	return held, locked, release, err
}

// connector is the context of a locked connector's work: a child of the
// run's that ends when its lock is lost for good, with the cause.
func (l *runLocks) connector(id int64) context.Context { return l.ctxs[id] }

// keep waits for the locks' loss and takes them again, until the run ends.
func (l *runLocks) keep(ctx context.Context, held context.Context, ids []int64) {
	defer close(l.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-held.Done():
		}
		if ctx.Err() != nil {
			return
		}
		cause := context.Cause(held)
		l.e.log.Warn("run lock lost: taking it again once the database answers", zap.Int64s("connectors", ids),
			zap.NamedError("cause", cause))
		// Free the old session's locks first: if it lives on (a check that
		// timed out), they would keep this run from taking them again.
		l.mu.Lock()
		l.release()
		l.release = func() {}
		l.mu.Unlock()
		var (
			got     []int64
			release func()
			err     error
		)
		held, got, release, err = l.e.takeLocks(ctx, ids)
		if err != nil {
			if ctx.Err() == nil {
				l.e.log.Error("could not take the run lock again: the run stops", zap.Error(err))
				l.end(ids, fmt.Errorf("%w; taking it again failed: %w", cause, err))
			}
			return
		}
		l.mu.Lock()
		l.release = release
		l.mu.Unlock()
		isGot := make(map[int64]bool, len(got))
		for _, id := range got {
			isGot[id] = true
		}
		var taken []int64
		for _, id := range ids {
			if !isGot[id] {
				taken = append(taken, id)
			}
		}
		if len(taken) > 0 {
			l.e.log.Error("run lock lost to another run: those connectors stop", zap.Int64s("connectors", taken))
			l.end(taken, errLockTaken)
		}
		if len(got) > 0 {
			l.e.log.Info("run lock taken again", zap.Int64s("connectors", got))
		}
		ids = got
		if len(ids) == 0 {
			return
		}
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
	l.mu.Lock()
	defer l.mu.Unlock()
	l.release()
	for _, cancel := range l.cancels {
		cancel(context.Canceled)
	}
}
