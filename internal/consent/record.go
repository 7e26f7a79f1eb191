package consent

import "time"

// The types below are what the sync engine and the store share: the engine
// (internal/sync) declares the store it needs with them, and the store
// (internal/store) implements it, neither importing the other.

// ConnectorRef is what the engine needs of a connector: whose records, and
// under which İYS codes they are sent.
type ConnectorRef struct {
	ID        int64
	BrandCode string
	IYSCode   string
	Active    bool // false: paused, never synced
	// NoSource: the connector was listed without a source query (the
	// brand's database is not read for it). false: it has one, or it is not
	// known; a reader looks it up.
	NoSource bool
}

// Record is one consent record as the engine claims it: the consent to send,
// the version sent (a result is written only for it) and the tries so far.
type Record struct {
	ID          int64
	ConnectorID int64
	Version     int64
	Consent     Consent
	ExternalID  string
	Attempts    int
}

// ClaimPos is where a run's last claim of a connector ended, in claim
// order (oldest consent first, then id): the run's next claim goes on after
// it, so that it does not step again over the index entries of every record
// claimed before (they stay until vacuum, and are read again while any
// snapshot can still see them). The zero ClaimPos is the start.
type ClaimPos struct {
	ConsentDate time.Time
	ID          int64
}

// SentRecord is a record of a submitted bulk request, with the subrequestId
// İYS gave it ("" when it was not sent: refused by the local pre-check).
type SentRecord struct {
	Record
	SubrequestID string
}

// SubmittedBatch is a bulk request whose requestId was saved but whose
// results were not recorded (a run stopped or died while polling it).
type SubmittedBatch struct {
	ID        int64
	RequestID string
	Items     []SentRecord // Version is the version sent; Attempts the record's now
}

// Verdict is what becomes of one record of a batch. It is written only while
// the record is still in flight in that batch at Version: a newer consent
// that arrived meanwhile is left alone (pending) and goes out next.
type Verdict struct {
	ID      int64
	Version int64
	State   State   // synced or rejected (with Outcome), pending (to retry) or failed
	Outcome Outcome // with synced and rejected only
	// Code and Message are İYS's (or the pre-check's) last word: the verdict's
	// code, or the last error of a retried or failed record. "" for none.
	Code          Code
	Message       string
	TransactionID string
	// Tried counts this try against the record's retry budget (attempts + 1).
	// A record handed back without a try of its own (shutdown, a refused
	// configuration, recovery) is not Tried.
	Tried   bool
	RetryIn time.Duration // pending: the next try is not before this long from now
}

// BatchState is where a batch (one bulk request) stands.
type BatchState string

// Batch states: claimed (records in flight, no requestId yet), submitted
// (requestId saved, results not yet recorded), done (results recorded),
// released (its records were handed back without results).
const (
	BatchClaimed   BatchState = "claimed"
	BatchSubmitted BatchState = "submitted"
	BatchDone      BatchState = "done"
	BatchReleased  BatchState = "released"
)

// Tally counts what one batch's verdicts did to its records, as written
// (verdicts for records that moved on meanwhile are not counted, but Stale).
type Tally struct {
	Sent     int // records sent to İYS in the request (pre-check refusals are not)
	Accepted int // synced: accepted or already in İYS
	Rejected int // rejected, by İYS or the pre-check
	Retried  int // back to pending after a transient failure
	Failed   int // retry budget spent
	Released int // back to pending without a result, tries not counted (shutdown, configuration)
	Stale    int // verdicts not written: a newer consent arrived meanwhile
	Outcomes map[Outcome]int
}

// Add adds o to t.
func (t *Tally) Add(o Tally) {
	t.Sent += o.Sent
	t.Accepted += o.Accepted
	t.Rejected += o.Rejected
	t.Retried += o.Retried
	t.Failed += o.Failed
	t.Released += o.Released
	t.Stale += o.Stale
	for k, v := range o.Outcomes {
		if t.Outcomes == nil {
			t.Outcomes = map[Outcome]int{}
		}
		t.Outcomes[k] += v
	}
}

// MaxAhead is how far ahead of the clock a consent's date may be when it is
// taken in (a file line, an intake item, a source row): the giver's clock may
// run a little ahead of ours. Such a consent waits for its date before it is
// sent, since İYS refuses a date in the future; one dated further ahead is
// refused.
const MaxAhead = 5 * time.Minute

// Backlog is what is left of a connector's work.
type Backlog struct {
	Pending  int // pending records, due or not
	InFlight int // records in a batch not yet finished
	// NextDueIn is how long until the earliest pending record may be tried
	// (0 or negative: now). Meaningful only when Pending > 0.
	NextDueIn time.Duration
}

// StartedRun is a run begun over one connector (store.StartRuns).
type StartedRun struct {
	ConnectorID int64
	RunID       int64
	// Recover: the connector has batches an earlier run left unfinished
	// (claimed or submitted), to hand back or poll before anything else.
	Recover bool
}

// RunEnd is how one connector's run ended (store.FinishRuns).
type RunEnd struct {
	RunID  int64
	Status RunStatus
	Err    string
}

// Trigger says what started a run.
type Trigger string

// Triggers of docs/cli.md (status --json lastRun.trigger).
const (
	TriggerSchedule Trigger = "schedule"
	TriggerRunNow   Trigger = "run-now"
)

// RunStatus is how a connector's run ended (status --json lastRun.status),
// or RunRunning while it goes on.
type RunStatus string

// Run statuses.
const (
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed" // nothing left pending or in flight
	RunPartial   RunStatus = "partial"   // work remains: window or shutdown, retries due later
	RunFailed    RunStatus = "failed"    // stopped by an error no retry mends (see the run's error)
)
