package sync

import (
	"context"
	"maps"
	"slices"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"
)

func istanbul(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func noJob(context.Context, Night, []string) {}

func TestSchedulerNextIsInItsZone(t *testing.T) {
	t.Parallel()
	s, err := NewScheduler(SchedulerOptions{Spec: "0 1 * * *", Location: istanbul(t), Window: 6 * time.Hour, Job: noJob})
	if err != nil {
		t.Fatal(err)
	}
	// 20:00 UTC is 23:00 in Istanbul: the next 01:00 there is 22:00 UTC the same day.
	got := s.Next(time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Next = %s, want %s", got.UTC(), want)
	}
	if _, err := NewScheduler(SchedulerOptions{Spec: "nightly", Location: istanbul(t), Window: time.Hour, Job: noJob}); err == nil {
		t.Fatal("a bad spec was accepted")
	}
	if _, err := NewScheduler(SchedulerOptions{Spec: "0 1 * * *", Window: time.Hour}); err == nil {
		t.Fatal("a scheduler without a job was accepted")
	}
}

// NightAt finds the latest tick whose window is open, in the schedule's zone.
func TestSchedulerNightAt(t *testing.T) {
	t.Parallel()
	loc := istanbul(t)
	s, err := NewScheduler(SchedulerOptions{Spec: "0 1 * * *", Location: loc, Window: 6 * time.Hour, Job: noJob})
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 10, h, m, 0, 0, loc) }
	for _, tc := range []struct {
		now  time.Time
		ok   bool
		tick time.Time
	}{
		{at(1, 5), true, at(1, 0)},
		{at(1, 0), true, at(1, 0)}, // the tick itself
		{at(6, 59), true, at(1, 0)},
		{at(7, 0), false, time.Time{}}, // the window's end
		{at(0, 30), false, time.Time{}},
		{at(0, 30).UTC(), false, time.Time{}},
		{at(3, 0).UTC(), true, at(1, 0)}, // any zone: the same moment
	} {
		n, ok := s.NightAt(tc.now)
		if ok != tc.ok || !n.Tick.Equal(tc.tick) || (ok && !n.Deadline.Equal(tc.tick.Add(6*time.Hour))) {
			t.Errorf("NightAt(%s) = %+v %v, want tick %s %v", tc.now, n, ok, tc.tick, tc.ok)
		}
	}
	// A frequent schedule: the latest of the ticks in the window.
	s, err = NewScheduler(SchedulerOptions{Spec: "*/10 * * * *", Location: loc, Window: time.Hour, Job: noJob})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := s.NightAt(at(1, 25)); !ok || !n.Tick.Equal(at(1, 20)) {
		t.Errorf("every 10 minutes at 01:25: %+v %v, want 01:20", n, ok)
	}
}

// A run still going when the next fire comes is skipped, not doubled; a
// panicking run does not stop the scheduler; Stop cancels the run and waits.
func TestSchedulerSkipsOverlapsRecoversAndStops(t *testing.T) {
	t.Parallel()
	var running, maxRunning, runs atomic.Int32
	var sawDeadline atomic.Bool
	job := func(ctx context.Context, night Night, brands []string) {
		n := runs.Add(1)
		if d := time.Until(night.Deadline); d > 50*time.Minute && d <= time.Hour && brands == nil {
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
	s, err := NewScheduler(SchedulerOptions{Spec: "@every 1s", Location: time.UTC, Window: time.Hour, Job: job})
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
		t.Error("the run's deadline was not its fire time plus the window, or it was not over every connector")
	}
}

// night is a fake world for the catch-up: a clock, the connectors that
// have not finished the night, and what each run does to them.
type night struct {
	t     *testing.T
	mu    gosync.Mutex
	now   time.Time
	left  map[string]string // unfinished: brand → why
	calls []jobCall
	looks int
	// run is what a job does: by default every connector run finishes.
	run func(call int, brands []string)
}

type jobCall struct {
	night  Night
	brands []string
}

func (n *night) clock() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.now
}

func (n *night) unfinished(_ context.Context, tick time.Time) (map[string]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.looks++
	return maps.Clone(n.left), nil
}

func (n *night) job(_ context.Context, ni Night, brands []string) {
	n.mu.Lock()
	n.calls = append(n.calls, jobCall{ni, slices.Clone(brands)})
	call, run := len(n.calls), n.run
	if run == nil {
		for _, b := range brands {
			delete(n.left, b)
		}
		if brands == nil {
			clear(n.left)
		}
	}
	n.mu.Unlock()
	if run != nil {
		run(call, brands)
	}
}

func (n *night) scheduler(loc *time.Location) *Scheduler {
	s, err := NewScheduler(SchedulerOptions{Spec: "0 1 * * *", Location: loc, Window: 6 * time.Hour, Job: n.job,
		Unfinished: n.unfinished, Now: n.clock, CatchUpPause: 5 * time.Millisecond, CatchUpPauseMax: 20 * time.Millisecond})
	if err != nil {
		n.t.Fatal(err)
	}
	return s
}

// tend runs the scheduler's night in progress to its end, as Start's
// catch-up (tick false) or a tick (tick true) does.
func (n *night) tend(loc *time.Location, tick bool) []jobCall {
	s := n.scheduler(loc)
	why := started
	if tick {
		why = fired
	}
	s.tend(why)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls
}

// A process started at 01:05 for a 01:00 schedule runs the night for the
// connectors that have not finished it, with the night's deadline, once.
func TestSchedulerCatchesUpAtStart(t *testing.T) {
	t.Parallel()
	loc := istanbul(t)
	tick := time.Date(2026, 3, 10, 1, 0, 0, 0, loc)
	n := &night{t: t, now: tick.Add(5 * time.Minute), left: map[string]string{"B": "no run", "A": "run 3 failed: x"}}
	calls := n.tend(loc, false)
	if len(calls) != 1 || !slices.Equal(calls[0].brands, []string{"A", "B"}) || !calls[0].night.Tick.Equal(tick) ||
		!calls[0].night.Deadline.Equal(tick.Add(6*time.Hour)) {
		t.Fatalf("calls = %+v, want one over A and B for the 01:00 night", calls)
	}

	// Started again, the night completed: nothing runs.
	n.calls = nil
	if calls := n.tend(loc, false); len(calls) != 0 {
		t.Fatalf("a completed night ran again: %+v", calls)
	}
	// Started after the window: nothing is even looked at.
	n.now, n.left, n.looks = tick.Add(6*time.Hour+time.Minute), map[string]string{"A": "no run"}, 0
	if calls := n.tend(loc, false); len(calls) != 0 || n.looks != 0 {
		t.Fatalf("after the window: calls %+v, looks %d", calls, n.looks)
	}
}

// A night whose runs fail is run again for the failed connectors only,
// until they finish; a tick runs every connector first.
func TestSchedulerRunsFailedConnectorsAgain(t *testing.T) {
	t.Parallel()
	loc := istanbul(t)
	tick := time.Date(2026, 3, 10, 1, 0, 0, 0, loc)
	n := &night{t: t, now: tick.Add(time.Second), left: map[string]string{"A": "no run", "B": "no run", "C": "no run"}}
	n.run = func(call int, brands []string) {
		n.mu.Lock()
		defer n.mu.Unlock()
		switch call {
		case 1: // A fails, B and C finish
			n.left = map[string]string{"A": "run 7 failed: database"}
		case 2: // A fails again
		case 3:
			clear(n.left)
		}
	}
	calls := n.tend(loc, true)
	want := [][]string{nil, {"A"}, {"A"}}
	if len(calls) != len(want) {
		t.Fatalf("calls = %+v, want %v", calls, want)
	}
	for i, c := range calls {
		if !slices.Equal(c.brands, want[i]) || !c.night.Tick.Equal(tick) {
			t.Errorf("call %d = %+v, want %v for the 01:00 night", i, c, want[i])
		}
	}
}

// Catching up stops when the window ends, whatever is left.
func TestSchedulerCatchUpEndsWithTheWindow(t *testing.T) {
	t.Parallel()
	loc := istanbul(t)
	tick := time.Date(2026, 3, 10, 1, 0, 0, 0, loc)
	n := &night{t: t, now: tick.Add(5 * time.Minute), left: map[string]string{"A": "run 1 failed: x"}}
	n.run = func(call int, _ []string) { // fails, and takes two hours
		n.mu.Lock()
		n.now = n.now.Add(2 * time.Hour)
		if call > 10 { // the window never ends: stop the test's scheduler
			clear(n.left)
		}
		n.mu.Unlock()
	}
	if calls := n.tend(loc, false); len(calls) != 3 { // at 01:05, 03:05, 05:05; 07:05 is past the window
		t.Fatalf("calls = %d (%+v), want 3", len(calls), calls)
	}
}

// Start catches up; a night that is done waits for its tick.
func TestSchedulerStartCatchesUp(t *testing.T) {
	t.Parallel()
	loc := istanbul(t)
	tick := time.Date(2026, 3, 10, 1, 0, 0, 0, loc)
	n := &night{t: t, now: tick.Add(5 * time.Minute), left: map[string]string{"A": "no run"}}
	s := n.scheduler(loc)
	s.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.mu.Lock()
		looks := n.looks
		n.mu.Unlock()
		if looks >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if len(n.calls) != 1 || !slices.Equal(n.calls[0].brands, []string{"A"}) {
		t.Fatalf("calls = %+v, want one catch-up over A", n.calls)
	}
}

// With LookEvery, a replica takes over within the window a connector that
// becomes unfinished and free after it started (another replica died
// mid-run), and only that one; outside the window it takes nothing.
func TestSchedulerTakesOver(t *testing.T) {
	t.Parallel()
	loc := istanbul(t)
	tick := time.Date(2026, 3, 10, 1, 0, 0, 0, loc)
	n := &night{t: t, now: tick.Add(10 * time.Minute), left: map[string]string{}}
	s, err := NewScheduler(SchedulerOptions{Spec: "0 1 * * *", Location: loc, Window: 6 * time.Hour, Job: n.job,
		Unfinished: n.unfinished, Now: n.clock, LookEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Stop(context.Background()) //nolint:errcheck // checked below
	waitLooks := func(min int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			n.mu.Lock()
			looks := n.looks
			n.mu.Unlock()
			if looks >= min {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d looks, want %d", looks, min)
			}
		}
	}
	waitLooks(3)
	n.mu.Lock()
	if len(n.calls) != 0 {
		t.Fatalf("ran %+v with nothing unfinished", n.calls)
	}
	n.left["B2"] = "run 7 is still marked running, and no one holds its lock: its process stopped"
	looks := n.looks
	n.mu.Unlock()
	waitLooks(looks + 3)
	n.mu.Lock()
	calls := slices.Clone(n.calls)
	n.now = tick.Add(7 * time.Hour) // the window has closed
	n.left["B3"] = "no run"
	looks = n.looks
	n.mu.Unlock()
	if len(calls) != 1 || !slices.Equal(calls[0].brands, []string{"B2"}) || !calls[0].night.Tick.Equal(tick) {
		t.Fatalf("calls %+v, want one over B2 for the 01:00 night", calls)
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.calls) != 1 || n.looks != looks {
		t.Fatalf("after the window: %d calls, %d more looks, want none", len(n.calls)-1, n.looks-looks)
	}
}
