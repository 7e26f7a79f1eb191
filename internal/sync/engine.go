package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	gosync "sync"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Defaults of Options' zero fields.
const (
	DefaultBatchSize   = consent.MaxBulkSize
	DefaultConcurrency = 4
	DefaultRetryBudget = 8
	// DefaultPollInitial is short so that a bulk request İYS answers quickly
	// is recorded quickly: a 2 s first wait held throttled runs at 77-88%
	// of their bound. Polls are not paced, and the wait doubles up to
	// DefaultPollMax, so a slow İYS costs a few more GETs per batch.
	DefaultPollInitial = 250 * time.Millisecond
	DefaultPollMax     = 30 * time.Second
	DefaultPollTimeout = 15 * time.Minute
	DefaultRetryBase   = 30 * time.Second
	DefaultRetryMax    = 30 * time.Minute
	DefaultRetryWait   = time.Minute
	DefaultStopGrace   = 10 * time.Second
	// A step that meets a transient database error is tried again after
	// DefaultDBRetryBase, doubling to DefaultDBRetryMax, within the window.
	DefaultDBRetryBase   = time.Second
	DefaultDBRetryMax    = time.Minute
	DefaultDBCallTimeout = 2 * time.Minute
	// DefaultWriteGrace is how long writing down a batch's results and the
	// run's end may go on after the run's context ended (the window, a
	// shutdown): they are the results of requests İYS processed.
	DefaultWriteGrace = 30 * time.Second
)

// busyPause is how long a connector waits when records are due but none
// could be claimed (another transaction holds them).
const busyPause = 200 * time.Millisecond

// Trigger says what started a run: consent.TriggerSchedule or TriggerRunNow.
type Trigger = consent.Trigger

// Triggers.
const (
	TriggerSchedule = consent.TriggerSchedule
	TriggerRunNow   = consent.TriggerRunNow
)

// Options configure an Engine. Zero fields take the defaults above.
type Options struct {
	BatchSize   int // records per bulk request, 1..1000
	Concurrency int // bulk requests in flight at once, over all connectors
	RetryBudget int // tries of a record before it fails with its last error

	Logger *zap.Logger      // nil: no logs
	Now    func() time.Time // the clock consent dates are judged by: the pre-check's, and a later date waits (nil: time.Now)

	PollInitial time.Duration // first wait before polling a bulk request; doubles up to PollMax
	PollMax     time.Duration
	// PollTimeout bounds the polling of one bulk request; a request still
	// unfinished then stays submitted, for the next run.
	PollTimeout time.Duration

	// RetryBase and RetryMax shape a record's delay after a transient
	// failure: RetryBase after the first try, doubling (with jitter) up to
	// RetryMax.
	RetryBase, RetryMax time.Duration
	// RetryWait: a connector whose only work left is retries due within
	// this long (and before the deadline) waits for them; later ones are
	// left for the next run (status partial). Negative: never wait.
	RetryWait time.Duration
	// StopGrace is how long the batches in flight may go on once the run's
	// context ends (shutdown, deadline), to finish instead of being left.
	StopGrace time.Duration

	// Transient tells a store error that may go away by itself (the
	// database restarting, a connection lost): the step that met it is
	// tried again, waiting DBRetryBase doubling to DBRetryMax, until the
	// run's window ends (or, for writing down results, WriteGrace after).
	// Each try gets DBCallTimeout. nil: no error is transient, and the
	// first one stops the connector's run.
	Transient                 func(error) bool
	DBRetryBase, DBRetryMax   time.Duration
	DBCallTimeout, WriteGrace time.Duration

	Observer Observer // optional: metrics hooks
	Puller   Puller   // optional: called first in each connector's run
	// WhilePaused is optional: called, under the connector's run lock, for
	// each paused connector a run skips, once the run is over (the brand's
	// source is still read; its records wait as pending).
	WhilePaused Puller
}

func (o Options) withDefaults() (Options, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.RetryBudget == 0 {
		o.RetryBudget = DefaultRetryBudget
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	def(&o.PollInitial, DefaultPollInitial)
	def(&o.PollMax, DefaultPollMax)
	def(&o.PollTimeout, DefaultPollTimeout)
	def(&o.RetryBase, DefaultRetryBase)
	def(&o.RetryMax, DefaultRetryMax)
	def(&o.RetryWait, DefaultRetryWait)
	def(&o.StopGrace, DefaultStopGrace)
	def(&o.DBRetryBase, DefaultDBRetryBase)
	def(&o.DBRetryMax, DefaultDBRetryMax)
	def(&o.DBCallTimeout, DefaultDBCallTimeout)
	def(&o.WriteGrace, DefaultWriteGrace)
	switch {
	case o.BatchSize < 1 || o.BatchSize > consent.MaxBulkSize:
		return o, fmt.Errorf("batch size %d: want 1 to %d", o.BatchSize, consent.MaxBulkSize)
	case o.Concurrency < 1:
		return o, fmt.Errorf("concurrency %d: want 1 or more", o.Concurrency)
	case o.RetryBudget < 1:
		return o, fmt.Errorf("retry budget %d: want 1 or more", o.RetryBudget)
	case o.PollInitial < 0 || o.PollMax < o.PollInitial:
		return o, fmt.Errorf("poll waits: want 0 < initial (%v) <= max (%v)", o.PollInitial, o.PollMax)
	case o.PollTimeout < 0 || o.RetryBase < 0 || o.StopGrace < 0:
		return o, errors.New("poll timeout, retry base and stop grace must not be negative")
	case o.RetryMax < o.RetryBase:
		return o, fmt.Errorf("retry delays: want base (%v) <= max (%v)", o.RetryBase, o.RetryMax)
	case o.DBRetryBase < 0 || o.DBRetryMax < o.DBRetryBase:
		return o, fmt.Errorf("database retry waits: want 0 < base (%v) <= max (%v)", o.DBRetryBase, o.DBRetryMax)
	case o.DBCallTimeout < 0 || o.WriteGrace < 0:
		return o, errors.New("database call timeout and write grace must not be negative")
	}
	return o, nil
}

// Engine runs syncs. It is safe for concurrent use: runs at once over the
// same connectors exclude each other through the store's run locks.
type Engine struct {
	st   Store
	iys  IYS
	opts Options
	log  *zap.Logger
}

// New checks the options and makes an engine.
func New(st Store, iys IYS, opts Options) (*Engine, error) {
	if st == nil || iys == nil {
		return nil, errors.New("sync engine: a store and an İYS client are required")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("sync engine: %w", err)
	}
	return &Engine{st: st, iys: iys, opts: opts, log: opts.Logger}, nil
}

// RunRequest says what one run does.
type RunRequest struct {
	Trigger    Trigger
	BrandCodes []string  // nil: every active connector
	Deadline   time.Time // the window's end; zero: none
}

// ConnectorSummary is one connector's part of a run.
type ConnectorSummary struct {
	BrandCode string
	RunID     int64             // 0 when skipped
	Status    consent.RunStatus // "" when skipped
	Sent      int               // records İYS received in this run
	Accepted  int               // synced: accepted or already in İYS
	Rejected  int               // by İYS or the local pre-check
	Retried   int               // back to pending after a transient failure
	Failed    int               // retry budget spent
	// Pending is what is left pending or in flight at the end; PendingUnknown
	// (-1, and null in JSON) when it could not be read, never a guess: Err
	// says why, and the status is failed.
	Pending int
	Skipped bool   // another run (process, replica) holds the connector, or it is paused
	Paused  bool   // skipped because an operator paused it (iys-sync pause)
	Err     string // why it failed, or what went wrong on the way
}

// Summary is what a run did.
type Summary struct {
	Connectors []ConnectorSummary
	// Pending counts the records of the connectors served that are left
	// pending (due later, or the window ended) or in flight (a bulk request
	// left for the next run's recovery); PendingUnknown when a connector's
	// could not be read. Failed records are in Failed.
	Pending int
	Failed  int // records that spent their retry budget in this run
}

// Run runs a sync over the requested connectors until nothing is pending,
// the deadline passes or ctx is done; then it finishes or hands back the
// batches in flight (see Options.StopGrace) and returns. A database that
// is out of reach for a while holds the run up (each step is tried again,
// see Options.Transient), it does not end it. Per-connector trouble is in
// the summary; the error is for a run that could not start (the
// connectors could not be listed or locked before the window ended).
func (e *Engine) Run(ctx context.Context, req RunRequest) (Summary, error) {
	if req.Trigger != TriggerSchedule && req.Trigger != TriggerRunNow {
		return Summary{}, fmt.Errorf("sync: trigger %q: want schedule or run-now", req.Trigger)
	}
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	var refs []consent.ConnectorRef
	err := e.retryDB(ctx, e.log, "list the connectors", func(ctx context.Context) error {
		var err error
		refs, err = e.st.SyncConnectors(ctx, req.BrandCodes)
		return err
	})
	if err != nil {
		return Summary{}, fmt.Errorf("sync: %w", err)
	}
	var sum Summary
	var ids []int64
	var active, paused []consent.ConnectorRef
	for _, r := range refs {
		if !r.Active {
			paused = append(paused, r)
			continue
		}
		active = append(active, r)
		ids = append(ids, r.ID)
	}
	if len(active) == 0 {
		sum.Connectors = e.skipPaused(ctx, paused)
		return sum, nil
	}
	locks, locked, err := e.lockRun(ctx, ids)
	if err != nil {
		return Summary{}, fmt.Errorf("sync: %w", err)
	}
	defer locks.close()
	isLocked := make(map[int64]bool, len(locked))
	for _, id := range locked {
		isLocked[id] = true
	}
	// An operator may have paused or uninstalled a connector between the
	// listing and the locks. Uninstall takes the run lock, so none held now
	// is uninstalled before the run ends.
	current := e.listAgain(ctx)
	var runs []*connRun
	for _, r := range active {
		if !isLocked[r.ID] {
			e.log.Info("connector skipped: another run holds it", zap.String("brand_code", r.BrandCode))
			sum.Connectors = append(sum.Connectors, ConnectorSummary{BrandCode: r.BrandCode, Skipped: true,
				Err: "another run (process or replica) is syncing this connector"})
			continue
		}
		if now, ok := current[r.ID]; current != nil && (!ok || !now.Active) {
			e.log.Info("connector skipped: paused or uninstalled as the run began", zap.String("brand_code", r.BrandCode))
			if ok {
				sum.Connectors = append(sum.Connectors, pausedSummary(r))
			}
			continue
		}
		if now, ok := current[r.ID]; ok {
			r = now // what it is now: its source query, say
		}
		c := &connRun{ref: r, ctx: locks.connector(r.ID), lockInDoubt: locks.inDoubt(r.ID), started: time.Now(),
			tally: consent.Tally{Outcomes: map[consent.Outcome]int{}}}
		runs = append(runs, c)
	}
	e.startRuns(ctx, runs, req.Trigger)

	s := newRoundRobin(runs)
	var wg gosync.WaitGroup
	for range e.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.work(ctx, s)
		}()
	}
	wg.Wait()

	// One grace for writing down every connector's end, however many: a
	// shutdown waits for it.
	bctx, cancel := e.bg(ctx)
	defer cancel()
	lost := make([]string, len(runs))
	for i, c := range runs {
		if ctx.Err() == nil && c.ctx.Err() != nil {
			lost[i] = context.Cause(c.ctx).Error()
		}
	}
	for _, cs := range e.finishRuns(bctx, runs, req.Trigger, lost) {
		sum.Connectors = append(sum.Connectors, cs)
		switch {
		case cs.Pending == PendingUnknown || sum.Pending == PendingUnknown:
			sum.Pending = PendingUnknown
		default:
			sum.Pending += cs.Pending
		}
		sum.Failed += cs.Failed
	}
	sum.Connectors = append(sum.Connectors, e.skipPaused(ctx, paused)...)
	sort.Slice(sum.Connectors, func(i, j int) bool { return sum.Connectors[i].BrandCode < sum.Connectors[j].BrandCode })
	return sum, nil
}

// skipPaused is the summary lines of the paused connectors a run skipped,
// after Options.WhilePaused read each one whose run lock it got (another
// run reads the others).
func (e *Engine) skipPaused(ctx context.Context, paused []consent.ConnectorRef) []ConnectorSummary {
	out := make([]ConnectorSummary, len(paused))
	ids := make([]int64, len(paused))
	for i, r := range paused {
		e.log.Info("connector skipped: it is paused", zap.String("brand_code", r.BrandCode))
		out[i] = pausedSummary(r)
		ids[i] = r.ID
	}
	if e.opts.WhilePaused == nil || len(paused) == 0 || ctx.Err() != nil {
		return out
	}
	held, locked, release, err := e.st.LockConnectors(ctx, ids)
	if err != nil {
		e.log.Warn("paused connectors not read: their run locks could not be taken", zap.Error(err))
		return out
	}
	defer release()
	for i, r := range paused {
		if !slices.Contains(locked, r.ID) {
			continue
		}
		if err := e.opts.WhilePaused.Pull(held, r, 0); err != nil {
			e.log.Warn("paused connector: its source could not be read", zap.String("brand_code", r.BrandCode), zap.Error(err))
			out[i].Err += "; source: " + err.Error()
		}
	}
	return out
}

func pausedSummary(r consent.ConnectorRef) ConnectorSummary {
	return ConnectorSummary{BrandCode: r.BrandCode, Skipped: true, Paused: true,
		Err: "connector is paused (iys-sync resume --brand-code " + r.BrandCode + " brings it back)"}
}

// listAgain is every installed connector by id, read once more after the
// run locks were taken; nil when it could not be read (the run then goes
// by its first listing).
func (e *Engine) listAgain(ctx context.Context) map[int64]consent.ConnectorRef {
	var refs []consent.ConnectorRef
	err := e.retryDB(ctx, e.log, "list the connectors again", func(ctx context.Context) error {
		var err error
		refs, err = e.st.SyncConnectors(ctx, nil)
		return err
	})
	if err != nil {
		e.log.Warn("connectors not listed again after the locks: a connector paused or uninstalled meanwhile is served", zap.Error(err))
		return nil
	}
	out := make(map[int64]consent.ConnectorRef, len(refs))
	for _, r := range refs {
		out[r.ID] = r
	}
	return out
}

// startRuns records the start of every connector's run, in one statement
// (it also tells which connectors have batches left to recover); when it
// cannot, each connector fails with the reason.
func (e *Engine) startRuns(ctx context.Context, runs []*connRun, trigger Trigger) {
	ids := make([]int64, len(runs))
	for i, c := range runs {
		ids[i] = c.ref.ID
	}
	var started []consent.StartedRun
	err := e.retryDB(ctx, e.log, "start the runs", func(ctx context.Context) error {
		var err error
		started, err = e.st.StartRuns(ctx, ids, trigger)
		return err
	})
	byID := make(map[int64]consent.StartedRun, len(started))
	for _, r := range started {
		byID[r.ConnectorID] = r
	}
	for _, c := range runs {
		st, ok := byID[c.ref.ID]
		switch {
		case err != nil:
			c.failed = fmt.Errorf("start run: %w", err)
			c.finished = true
		case !ok:
			c.failed = errors.New("start run: the database started none for this connector")
			c.finished = true
		default:
			c.runID, c.recover = st.RunID, st.Recover
		}
		c.log = e.log.With(zap.String("brand_code", c.ref.BrandCode), zap.Int64("run_id", c.runID))
	}
}

// finishRuns settles the connectors' runs: each status from its failure,
// if any (lost[i] says why runs[i]'s lock was lost), and what is left; the
// runs rows; the summary lines. What is left is read, and the rows
// written, in one statement each for all the connectors. bctx bounds its
// writes (see bg).
func (e *Engine) finishRuns(bctx context.Context, runs []*connRun, trigger Trigger, lost []string) []ConnectorSummary {
	ids := make([]int64, len(runs))
	for i, c := range runs {
		ids[i] = c.ref.ID
	}
	var bls map[int64]consent.Backlog
	blErr := e.retryDB(bctx, e.log, "read the backlog", func(ctx context.Context) error {
		var err error
		bls, err = e.st.Backlogs(ctx, ids, e.opts.Now())
		return err
	})
	out := make([]ConnectorSummary, len(runs))
	var ends []consent.RunEnd
	for i, c := range runs {
		bl, ok := bls[c.ref.ID]
		err := blErr
		if err == nil && !ok {
			err = errors.New("the database did not answer for this connector")
		}
		out[i] = e.settle(c, lost[i], bl, err)
		if c.runID != 0 {
			ends = append(ends, consent.RunEnd{RunID: c.runID, Status: out[i].Status, Err: out[i].Err})
		}
	}
	var notRunning []int64
	var endErr error
	if len(ends) > 0 {
		endErr = e.retryDB(bctx, e.log, "record the end of the runs", func(ctx context.Context) error {
			var err error
			notRunning, err = e.st.FinishRuns(ctx, ends)
			return err
		})
	}
	for i, c := range runs {
		cs := out[i]
		if c.runID != 0 {
			switch {
			case endErr != nil:
				// The row stays running; the connector's next run closes it.
				c.log.Error("could not record the end of the run", zap.Error(endErr))
			case slices.Contains(notRunning, c.runID):
				c.log.Error("could not record the end of the run",
					zap.String("error", fmt.Sprintf("finish run %d: it is not running any more (closed by a later run?)", c.runID)))
			}
		}
		fields := []zap.Field{zap.String("trigger", string(trigger)), zap.String("status", string(cs.Status)),
			zap.Int("sent", cs.Sent), zap.Int("accepted", cs.Accepted), zap.Int("rejected", cs.Rejected),
			zap.Int("retried", cs.Retried), zap.Int("failed", cs.Failed)}
		if cs.Pending == PendingUnknown {
			fields = append(fields, zap.String("pending", "unknown"))
		} else {
			bl := bls[c.ref.ID]
			fields = append(fields, zap.Int("pending", bl.Pending), zap.Int("in_flight", bl.InFlight))
		}
		fields = append(fields, zap.Duration("duration", time.Since(c.started)))
		if cs.Err != "" {
			fields = append(fields, zap.String("error", cs.Err))
		}
		if cs.Status == consent.RunFailed {
			c.log.Error("sync run finished", fields...)
		} else {
			c.log.Info("sync run finished", fields...)
		}
	}
	return out
}

// settle is a connector's summary line: its status from its failure, if
// any, lost (why its lock was lost, or ""), and what is left (bl, or blErr
// when it could not be read).
func (e *Engine) settle(c *connRun, lost string, bl consent.Backlog, blErr error) ConnectorSummary {
	cs := ConnectorSummary{BrandCode: c.ref.BrandCode, RunID: c.runID, Sent: c.tally.Sent,
		Accepted: c.tally.Accepted, Rejected: c.tally.Rejected, Retried: c.tally.Retried, Failed: c.tally.Failed}
	var errs []string
	if c.failed != nil {
		errs = append(errs, c.failed.Error())
	} else if lost != "" {
		errs = append(errs, lost)
	}
	if c.pullErr != nil {
		errs = append(errs, "pull: "+c.pullErr.Error())
	}
	if cs.Failed > 0 {
		errs = append(errs, fmt.Sprintf("%d records failed after %d tries: their last error is in the report (state failed)",
			cs.Failed, e.opts.RetryBudget))
	}
	cs.Pending = bl.Pending + bl.InFlight
	if blErr != nil {
		cs.Pending = PendingUnknown
		errs = append(errs, "records left unknown: "+blErr.Error())
	}
	switch {
	case c.failed != nil || lost != "" || blErr != nil:
		cs.Status = consent.RunFailed
	case cs.Pending > 0 || c.pullErr != nil || cs.Failed > 0:
		cs.Status = consent.RunPartial
	default:
		cs.Status = consent.RunCompleted
	}
	cs.Err = joinErrs(errs)
	return cs
}

func joinErrs(errs []string) string {
	out := ""
	for i, e := range errs {
		if i > 0 {
			out += "; "
		}
		out += e
	}
	return out
}

// work is one worker: it takes the scheduler's tasks until there are none.
func (e *Engine) work(ctx context.Context, s *roundRobin) {
	for {
		t := s.next(ctx)
		if t == nil {
			return
		}
		var res taskResult
		// A task runs under its connector's context, which also ends when
		// the connector's run lock is lost for good.
		switch c := t.c; t.kind {
		case taskPrep:
			res = e.prepare(c.ctx, c)
		case taskRecover:
			res = e.recoverBatch(c.ctx, c, t.batch)
		case taskPush:
			res = e.push(c.ctx, c, func() { s.claimed(c) })
		case taskEvaluate:
			res = e.evaluate(c.ctx, c)
		}
		s.done(t, res)
	}
}

// prepare is a connector's first task: recovery, then the pull.
func (e *Engine) prepare(ctx context.Context, c *connRun) taskResult {
	var (
		released  int
		submitted []consent.SubmittedBatch
	)
	// Only a connector an earlier run left batches (StartRuns said so,
	// under the run lock: nobody makes any meanwhile) has anything to
	// recover.
	if c.recover {
		err := e.retryDB(ctx, c.log, "recover batches", func(ctx context.Context) error {
			var err error
			released, submitted, err = e.st.RecoverBatches(ctx, c.ref.ID)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return taskResult{} // stopped: the next run recovers
			}
			return taskResult{fatal: fmt.Errorf("recover batches: %w", err)}
		}
	}
	if released > 0 || len(submitted) > 0 {
		c.log.Info("recovering what an earlier run left",
			zap.Int("records_released", released), zap.Int("batches_to_poll", len(submitted)))
	}
	res := taskResult{recovered: submitted}
	if e.opts.Puller != nil {
		if err := e.opts.Puller.Pull(ctx, c.ref, c.runID); err != nil {
			c.log.Warn("pull from İYS failed; pushing all the same", zap.Error(err))
			res.pullErr = err
		}
	}
	return res
}

// evaluate decides, once a connector has nothing due and nothing running,
// whether it is done or waits for retries due soon.
func (e *Engine) evaluate(ctx context.Context, c *connRun) taskResult {
	var bl consent.Backlog
	err := e.retryDB(ctx, c.log, "read the backlog", func(ctx context.Context) error {
		var err error
		bl, err = e.st.Backlog(ctx, c.ref.ID, e.opts.Now())
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return taskResult{}
		}
		return taskResult{fatal: fmt.Errorf("backlog: %w", err)}
	}
	if bl.Pending == 0 {
		return taskResult{finished: true}
	}
	if bl.NextDueIn <= 0 {
		// Due now, yet the claim found nothing: records that came due or
		// were imported meanwhile, or rows another transaction holds (an
		// import in progress). Claim again after a short pause.
		return taskResult{wakeAt: time.Now().Add(busyPause)}
	}
	wait := e.opts.RetryWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if bl.NextDueIn > wait {
		c.log.Info("records left for a later run: not due soon (a retry's delay, or a consent dated ahead)",
			zap.Int("pending", bl.Pending), zap.Duration("next_due_in", bl.NextDueIn))
		return taskResult{finished: true}
	}
	return taskResult{wakeAt: time.Now().Add(bl.NextDueIn)}
}
