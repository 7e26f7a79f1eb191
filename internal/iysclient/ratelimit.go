package iysclient

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// İYS publishes no rate limit and throttles with 429, so the limiter adapts
// (multiplicative decrease, stepwise recovery): a 429 halves the rate for a
// while; each quiet period after it doubles the rate back, up to the
// configured one.
const (
	// throttleGuard: 429s within this time of a cut answer requests sent at
	// the old rate, so they do not cut again.
	throttleGuard = time.Second
	// floorDivisor: the rate never falls below the configured one / 32.
	floorDivisor = 32
)

type adaptiveLimiter struct {
	lim     *rate.Limiter // nil: no pacing
	base    rate.Limit
	floor   rate.Limit
	slowFor time.Duration
	now     func() time.Time
	log     *zap.Logger
	pacer   Pacer // shares the pace with the API user's other processes; nil: none

	mu      sync.Mutex
	until   time.Time // end of the current slow step
	lastCut time.Time
}

func newAdaptiveLimiter(rps float64, burst int, slowFor time.Duration, now func() time.Time, log *zap.Logger) *adaptiveLimiter {
	l := &adaptiveLimiter{slowFor: slowFor, now: now, log: log}
	if rps > 0 {
		l.base = rate.Limit(rps)
		l.floor = l.base / floorDivisor
		l.lim = rate.NewLimiter(l.base, burst)
	}
	return l
}

// Wait blocks until a request may go, or ctx is done.
func (l *adaptiveLimiter) Wait(ctx context.Context) error {
	if l.lim == nil {
		return ctx.Err()
	}
	l.recover()
	if err := l.lim.Wait(ctx); err != nil || l.pacer == nil {
		return err
	}
	spacing := time.Duration(float64(time.Second) / float64(l.lim.Limit()))
	wait, err := l.pacer.Reserve(ctx, spacing)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		l.log.Warn("the API user's shared send pace could not be reached: this process paces alone", zap.Error(err))
		return nil
	case wait <= 0:
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// recover doubles a lowered rate once its slow step is over.
func (l *adaptiveLimiter) recover() {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.lim.Limit()
	now := l.now()
	if cur >= l.base || now.Before(l.until) {
		return
	}
	next := min(cur*2, l.base)
	l.lim.SetLimit(next)
	l.until = now.Add(l.slowFor)
	l.log.Info("İYS request rate recovering", zap.Float64("rps", float64(next)))
}

// Throttled records a 429: the rate halves, and stays lower for slowFor.
func (l *adaptiveLimiter) Throttled() {
	if l.lim == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.lastCut.IsZero() && now.Sub(l.lastCut) < throttleGuard {
		return
	}
	next := max(l.lim.Limit()/2, l.floor)
	l.lim.SetLimit(next)
	l.lastCut = now
	l.until = now.Add(l.slowFor)
	l.log.Warn("İYS throttled us (429): slowing down",
		zap.Float64("rps", float64(next)), zap.Duration("for", l.slowFor))
}

// Limit is the current rate; rate.Inf without pacing.
func (l *adaptiveLimiter) Limit() rate.Limit {
	if l.lim == nil {
		return rate.Inf
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lim.Limit()
}
