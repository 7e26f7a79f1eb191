package sync

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func istanbul(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSchedulerNextIsInItsZone(t *testing.T) {
	s, err := NewScheduler("0 1 * * *", istanbul(t), 6*time.Hour, func(context.Context, time.Time) {}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	// 20:00 UTC is 23:00 in Istanbul: the next 01:00 there is 22:00 UTC the same day.
	got := s.Next(time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Next = %s, want %s", got.UTC(), want)
	}
	if _, err := NewScheduler("nightly", istanbul(t), time.Hour, nil, zap.NewNop()); err == nil {
		t.Fatal("a bad spec was accepted")
	}
}

// A run still going when the next fire comes is skipped, not doubled; a
// panicking run does not stop the scheduler; Stop cancels the run and waits.
func TestSchedulerSkipsOverlapsRecoversAndStops(t *testing.T) {
	var running, maxRunning, runs atomic.Int32
	var sawDeadline atomic.Bool
	job := func(ctx context.Context, deadline time.Time) {
		n := runs.Add(1)
		if d := time.Until(deadline); d > 50*time.Minute && d <= time.Hour {
			sawDeadline.Store(true)
		}
		if n == 1 {
			panic("a run that panics")
		}
		cur := running.Add(1)
		defer running.Add(-1)
		for {
			if m := maxRunning.Load(); cur <= m || maxRunning.CompareAndSwap(m, cur) {
				break
			}
		}
		<-ctx.Done() // runs until Stop: every later fire overlaps it
	}
	s, err := NewScheduler("@every 1s", time.UTC, time.Hour, job, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	deadline := time.Now().Add(10 * time.Second)
	for runs.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // two more fires while the second run goes on
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 2 {
		t.Errorf("runs = %d, want 2: the panic must not stop the scheduler, and overlapping fires must be skipped", runs.Load())
	}
	if maxRunning.Load() != 1 || running.Load() != 0 {
		t.Errorf("max concurrent runs %d, running after Stop %d", maxRunning.Load(), running.Load())
	}
	if !sawDeadline.Load() {
		t.Error("the run's deadline was not its fire time plus the window")
	}
}
