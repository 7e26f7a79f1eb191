package sync

import (
	"context"
	"fmt"
	gosync "sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// Scheduler fires the nightly job on a cron spec read in the schedule's time
// zone. A run that is still going when the next fire comes is left alone
// (SkipIfStillRunning), a panic in a run is logged instead of ending the
// process (Recover), and each run gets a deadline of its fire time plus the
// window, so that it ends cleanly and the next night resumes it.
type Scheduler struct {
	cron   *cron.Cron
	sched  cron.Schedule
	window time.Duration
	job    func(ctx context.Context, deadline time.Time)
	log    *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     gosync.WaitGroup
}

// NewScheduler checks the spec and zone; job is called once per fire with a
// context that Stop cancels.
func NewScheduler(spec string, loc *time.Location, window time.Duration, job func(ctx context.Context, deadline time.Time), log *zap.Logger) (*Scheduler, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	if window <= 0 {
		return nil, fmt.Errorf("window must be positive, got %s", window)
	}
	logger := cron.PrintfLogger(zap.NewStdLog(log.Named("cron")))
	s := &Scheduler{
		// Recover must sit inside SkipIfStillRunning: in cron v3.0.1 a panic
		// passing through SkipIfStillRunning never gives its token back, and
		// every later night would be skipped.
		cron: cron.New(cron.WithLocation(loc), cron.WithLogger(logger),
			cron.WithChain(cron.SkipIfStillRunning(logger), cron.Recover(logger))),
		sched: sched, window: window, job: job, log: log,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cron.Schedule(sched, cron.FuncJob(s.fire))
	return s, nil
}

func (s *Scheduler) fire() {
	s.wg.Add(1)
	defer s.wg.Done()
	start := time.Now()
	deadline := start.Add(s.window)
	s.log.Info("scheduled run starts", zap.Time("deadline", deadline))
	s.job(s.ctx, deadline)
}

// Next is when the schedule next fires after t.
func (s *Scheduler) Next(t time.Time) time.Time { return s.sched.Next(t.In(s.cron.Location())) }

// Start begins firing.
func (s *Scheduler) Start() {
	s.cron.Start()
	s.log.Info("scheduler started", zap.Time("next", s.Next(time.Now())), zap.String("zone", s.cron.Location().String()))
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
