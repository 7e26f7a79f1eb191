package sync

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// retryDB runs a step of the run against the database until it succeeds,
// fails with an error Options.Transient does not call transient, or ctx
// ends; waits between tries grow from DBRetryBase, doubling with jitter, to
// DBRetryMax. Each try gets DBCallTimeout: a connection to a server that
// went silent (no reset, no answer) is given up and the step tried again on
// another. It returns the step's last error. So a database that restarts
// or drops its connections for a while costs the run that while, not the
// night.
func (e *Engine) retryDB(ctx context.Context, log *zap.Logger, step string, op func(ctx context.Context) error) error {
	var b backoff.BackOff
	start := time.Now()
	for tries := 1; ; tries++ {
		err := e.tryDB(ctx, op)
		if err == nil {
			if tries > 1 {
				log.Info("database answers again", zap.String("step", step), zap.Int("tries", tries),
					zap.Duration("after", time.Since(start)))
			}
			return nil
		}
		if e.opts.Transient == nil || ctx.Err() != nil || !(errors.Is(err, errNoAnswer) || e.opts.Transient(err)) {
			return err
		}
		if b == nil {
			b = backoff.NewExponentialBackOff(
				backoff.WithInitialInterval(e.opts.DBRetryBase),
				backoff.WithMultiplier(2),
				backoff.WithRandomizationFactor(0.2),
				backoff.WithMaxInterval(e.opts.DBRetryMax),
				backoff.WithMaxElapsedTime(0), // ctx bounds it: the window, or the write grace
			)
		}
		wait := min(b.NextBackOff(), e.opts.DBRetryMax)
		log.Warn("database error: trying again", zap.String("step", step), zap.Int("tries", tries),
			zap.Duration("next_in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// errNoAnswer: a try of a step ran out of DBCallTimeout (and its context
// had not ended).
var errNoAnswer = errors.New("no answer from the database")

// tryDB is one try of a step, within DBCallTimeout.
func (e *Engine) tryDB(ctx context.Context, op func(ctx context.Context) error) error {
	tctx, cancel := context.WithTimeout(ctx, e.opts.DBCallTimeout)
	defer cancel()
	err := op(tctx)
	if err != nil && tctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%w within %v: %w", errNoAnswer, e.opts.DBCallTimeout, err)
	}
	return err
}

// bg is a context for writing down what happened, also after ctx ended:
// the results of a request İYS processed must not be lost to a shutdown,
// the window's end or a database that is down for a while. It lives
// WriteGrace longer than ctx; a write retried under it gives up then, and
// what it could not write is found by the next run's recovery.
func (e *Engine) bg(ctx context.Context) (context.Context, context.CancelFunc) {
	return outlive(ctx, e.opts.WriteGrace)
}

// graceful is a context for a batch in flight: it outlives ctx by
// StopGrace, so that a batch can finish instead of being left.
func (e *Engine) graceful(ctx context.Context) (context.Context, context.CancelFunc) {
	return outlive(ctx, e.opts.StopGrace)
}

// outlive is a context that ends grace after ctx does (or when cancelled).
func outlive(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var (
		mu    gosync.Mutex
		timer *time.Timer
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return gctx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}
