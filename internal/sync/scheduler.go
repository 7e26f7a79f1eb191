package sync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// Night is one firing of the schedule: its tick, and the end of its window
// (the tick plus the window), when its runs stop cleanly.
type Night struct {
	Tick, Deadline time.Time
}

// Job runs the sync of a night: over every connector when brandCodes is
// nil, else over the connectors named.
type Job func(ctx context.Context, night Night, brandCodes []string)

// Unfinished tells which connectors have not finished the night that began
// at tick, each with why (for the log). *store.Store's UnfinishedNights is
// one.
type Unfinished func(ctx context.Context, tick time.Time) (map[string]string, error)

// Defaults of SchedulerOptions' zero fields.
const (
	DefaultCatchUpPause    = time.Minute
	DefaultCatchUpPauseMax = 15 * time.Minute
)

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Spec     string         // cron spec, 5 fields
	Location *time.Location // the spec's time zone
	Window   time.Duration  // how long a night's runs may go on after its tick
	Job      Job
	// Unfinished, when set, lets the scheduler see a night through: see
	// Scheduler. nil: each tick runs once, nothing more.
	Unfinished Unfinished
	Logger     *zap.Logger      // nil: no logs
	Now        func() time.Time // nil: time.Now; the clock that tells the night
	// CatchUpPause is the first wait before a night's failed connectors run
	// again; it doubles, with jitter, up to CatchUpPauseMax, so that what
	// failed (a refused brand, a database that stayed down) has time to
	// mend and İYS is not asked again and again.
	CatchUpPause, CatchUpPauseMax time.Duration
	// LookEvery, with Unfinished set, is how often the scheduler looks,
	// while a night's window is open, for connectors that have not
	// finished it and that no run holds: a replica died mid-run, or this
	// one started after the tick. It takes them over. 0: it looks only at
	// start and after its own runs.
	LookEvery time.Duration
}

// Scheduler fires the nightly job on a cron spec read in the schedule's time
// zone; each night's runs get the deadline of its tick plus the window, so
// that they end cleanly and the next night resumes them. Runs never
// overlap: a fire while a run goes on is skipped (the night in progress is
// seen through first, see below), and a panic in a run is logged instead of
// ending the process.
//
// With Unfinished set it also sees a night through. When it starts within a
// night's window (a process restarted at 01:05 for a 01:00 schedule), and
// when a night's run ends with connectors whose night is not finished (their
// run failed), it runs again for those connectors, after a pause that grows,
// until none is left or the window ends. A night that completed is not run
// again. It always works on the latest night whose window is open. With
// LookEvery it also takes over, within the window, the connectors another
// replica left unfinished when it died: their locks are free again.
type Scheduler struct {
	cron   *cron.Cron
	sched  cron.Schedule
	loc    *time.Location
	window time.Duration
	job    Job
	due    Unfinished
	log    *zap.Logger
	now    func() time.Time
	pause  [2]time.Duration // CatchUpPause, CatchUpPauseMax
	every  time.Duration    // LookEvery
	// recover runs a function with cron's panic recovery.
	recover func(func())

	running atomic.Bool // a night is being run or seen through

	ctx    context.Context
	cancel context.CancelFunc
	wg     gosync.WaitGroup
}

// NewScheduler checks the options; Job is called with a context that Stop
// cancels.
func NewScheduler(o SchedulerOptions) (*Scheduler, error) {
	sched, err := cron.ParseStandard(o.Spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", o.Spec, err)
	}
	switch {
	case o.Window <= 0:
		return nil, fmt.Errorf("window must be positive, got %s", o.Window)
	case o.Job == nil:
		return nil, errors.New("scheduler: a job is required")
	case o.CatchUpPause < 0 || o.CatchUpPauseMax < 0 || o.LookEvery < 0:
		return nil, errors.New("scheduler: catch-up pauses and LookEvery must not be negative")
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CatchUpPause == 0 {
		o.CatchUpPause = DefaultCatchUpPause
	}
	if o.CatchUpPauseMax == 0 {
		o.CatchUpPauseMax = DefaultCatchUpPauseMax
	}
	o.CatchUpPauseMax = max(o.CatchUpPauseMax, o.CatchUpPause)
	logger := cron.PrintfLogger(zap.NewStdLog(o.Logger.Named("cron")))
	recoverer := cron.NewChain(cron.Recover(logger))
	s := &Scheduler{
		// Overlaps are skipped by running, not by cron's SkipIfStillRunning:
		// the catch-up at start runs outside cron.
		cron:  cron.New(cron.WithLocation(o.Location), cron.WithLogger(logger), cron.WithChain(cron.Recover(logger))),
		sched: sched, loc: o.Location, window: o.Window, job: o.Job, due: o.Unfinished, log: o.Logger, now: o.Now,
		pause: [2]time.Duration{o.CatchUpPause, o.CatchUpPauseMax}, every: o.LookEvery,
		recover: func(f func()) { recoverer.Then(cron.FuncJob(f)).Run() },
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cron.Schedule(sched, cron.FuncJob(s.fire))
	return s, nil
}

// fire is cron's: a tick.
func (s *Scheduler) fire() {
	s.wg.Add(1)
	defer s.wg.Done()
	s.tend(fired)
}

// why a night is tended.
type trigger int

const (
	fired   trigger = iota // the schedule's tick: every connector
	started                // the process started: catch up, saying so
	looked                 // LookEvery: take over, quiet when there is nothing to
)

// Next is when the schedule next fires after t.
func (s *Scheduler) Next(t time.Time) time.Time { return s.sched.Next(t.In(s.loc)) }

// NightAt is the latest night whose window is open at t; ok is false when
// none is (t is more than the window after the last tick).
func (s *Scheduler) NightAt(t time.Time) (n Night, ok bool) {
	tick := s.Next(t.Add(-s.window))
	if tick.IsZero() || tick.After(t) {
		return Night{}, false
	}
	for {
		next := s.Next(tick)
		if next.IsZero() || next.After(t) {
			return Night{Tick: tick, Deadline: tick.Add(s.window)}, true
		}
		tick = next
	}
}

// Start begins firing; with Unfinished set, it first catches up on the
// night in progress, if its window is open and some connectors have not
// finished it.
func (s *Scheduler) Start() {
	s.cron.Start()
	s.log.Info("scheduler started", zap.Time("next", s.Next(s.now())), zap.String("zone", s.loc.String()))
	if s.due == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.recover(func() { s.tend(started) })
		if s.every <= 0 {
			return
		}
		for s.sleep(s.every) {
			if !s.running.Load() {
				s.recover(func() { s.tend(looked) })
			}
		}
	}()
}

// tend runs the night in progress: over every connector when fired by its
// tick, and then (or first, at start) over the connectors that have not
// finished it, after a pause, until none is left or its window ends.
func (s *Scheduler) tend(why trigger) {
	if !s.running.CompareAndSwap(false, true) {
		if why == fired {
			s.log.Warn("scheduled run skipped: the previous one is still going")
		}
		return
	}
	defer s.running.Store(false)
	night, ok := s.NightAt(s.now())
	if !ok {
		return
	}
	var brands []string // nil: every connector
	if why == fired {
		s.log.Info("scheduled run starts", zap.Time("tick", night.Tick), zap.Time("deadline", night.Deadline))
	} else if night, brands, ok = s.unfinished(why == looked); !ok {
		return
	}
	pause := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(s.pause[0]),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.2),
		backoff.WithMaxInterval(s.pause[1]),
		backoff.WithMaxElapsedTime(0),
	)
	for {
		s.job(s.ctx, night, brands)
		if s.due == nil || s.ctx.Err() != nil {
			return
		}
		// Look first, so that a night that is done does not wait.
		if _, left, open := s.unfinishedQuiet(); !open || len(left) == 0 {
			return
		}
		if !s.sleep(min(pause.NextBackOff(), s.pause[1])) {
			return
		}
		if night, brands, ok = s.unfinished(false); !ok {
			return
		}
	}
}

// unfinished finds the night in progress and its connectors that have not
// finished it and that no run holds, and logs why it catches up (or, unless
// quiet, that it need not); ok is false when there is nothing to do.
func (s *Scheduler) unfinished(quiet bool) (night Night, brands []string, ok bool) {
	night, left, open := s.unfinishedQuiet()
	switch {
	case !open:
		return Night{}, nil, false
	case len(left) == 0:
		if !quiet {
			s.log.Info("nothing to catch up on: every connector has finished the night, or is being run", zap.Time("tick", night.Tick))
		}
		return Night{}, nil, false
	}
	for b := range left {
		brands = append(brands, b)
	}
	sort.Strings(brands)
	s.log.Info("catching up on the night: these connectors have not finished it",
		zap.Time("tick", night.Tick), zap.Time("deadline", night.Deadline), zap.Any("connectors", left))
	return night, brands, true
}

// unfinishedQuiet is the night in progress, if its window is open, and its
// unfinished connectors, without the log. A failure to tell counts as
// nothing to do (open is false): it is logged, and the next tick runs all.
func (s *Scheduler) unfinishedQuiet() (night Night, left map[string]string, open bool) {
	night, ok := s.NightAt(s.now())
	if !ok {
		return Night{}, nil, false
	}
	left, err := s.due(s.ctx, night.Tick)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Error("cannot tell which connectors have not finished the night: no catch-up", zap.Error(err))
		}
		return Night{}, nil, false
	}
	return night, left, true
}

// sleep waits d, or less if Stop comes first (false then).
func (s *Scheduler) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stop stops firing, cancels the run in progress (which hands its work back)
// and waits for it to return, or for ctx to end.
func (s *Scheduler) Stop(ctx context.Context) error {
	stopped := s.cron.Stop()
	s.cancel()
	done := make(chan struct{})
	go func() {
		<-stopped.Done()
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop scheduler: the run in progress did not end in time: %w", ctx.Err())
	}
}
