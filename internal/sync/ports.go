package sync

import (
	"context"
	"errors"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Store is the database as the engine needs it; *store.Store implements it.
type Store interface {
	// SyncConnectors lists the connectors to serve: all when brandCodes is
	// nil, else the named ones (an unknown one is an error).
	SyncConnectors(ctx context.Context, brandCodes []string) ([]consent.ConnectorRef, error)
	// LockConnectors takes, without waiting, the run lock of each connector
	// and reports which it got. held is a child of ctx that also ends if the
	// locks are lost. release frees them; it is called once.
	LockConnectors(ctx context.Context, ids []int64) (held context.Context, locked []int64, release func(), err error)
	// StartRuns records a run over each connector and closes their runs
	// left running; each started run says whether its connector has
	// batches an earlier run left unfinished (claimed or submitted).
	StartRuns(ctx context.Context, connectorIDs []int64, trigger consent.Trigger) ([]consent.StartedRun, error)
	// RecoverBatches hands back batches claimed without a requestId and
	// returns those submitted with one, to poll.
	RecoverBatches(ctx context.Context, connectorID int64) (released int, submitted []consent.SubmittedBatch, err error)
	// ClaimBatchAfter puts up to size due pending records after pos (in
	// claim order: oldest consent first, then id) in flight in a new batch;
	// batchID 0 and no records when nothing is due. A record dated after now
	// is not due.
	ClaimBatchAfter(ctx context.Context, connectorID, runID int64, size int, now time.Time, pos consent.ClaimPos) (batchID int64, recs []consent.Record, err error)
	// SaveSubmission saves a batch's requestId and its records' subrequestIds.
	SaveSubmission(ctx context.Context, batchID int64, requestID string, ids []int64, subrequestIDs []string) error
	// SaveSubRequest saves a bulk request carrying some of a claimed batch's
	// records (İYS refused the batch's own request whole) as a submitted
	// batch of its own, those records moved to it, and returns its id.
	SaveSubRequest(ctx context.Context, batchID int64, requestID string, ids []int64, subrequestIDs []string) (int64, error)
	// FinishBatch writes a batch's verdicts (guarded by batch, state and
	// version), closes the batch and counts what it wrote in the run.
	FinishBatch(ctx context.Context, runID, batchID int64, sent int, state consent.BatchState, vs []consent.Verdict) (consent.Tally, error)
	// Backlog tells what is left of a connector's work; a record dated
	// after now is not due before its date.
	Backlog(ctx context.Context, connectorID int64, now time.Time) (consent.Backlog, error)
	// Backlogs is Backlog of each connector, by id.
	Backlogs(ctx context.Context, connectorIDs []int64, now time.Time) (map[int64]consent.Backlog, error)
	// FinishRuns records how runs ended, and returns those no longer
	// running (a later run closed them).
	FinishRuns(ctx context.Context, ends []consent.RunEnd) (notRunning []int64, err error)
}

// IYS is İYS as the engine needs it; iysadapter.New makes one of an
// *iysclient.Client. Its errors should be (or wrap) a *CallError, which
// says what they mean; others count as ClassUnknown, and a done context's
// as transient.
type IYS interface {
	// SubmitBulk sends 1..1000 consents, no key twice, as one asynchronous
	// bulk request, and returns its requestId and each consent's
	// subrequestId, in the order of items. When İYS refuses the request
	// whole because of its items, the error is a *CallError with a Refusal.
	SubmitBulk(ctx context.Context, iysCode, brandCode string, items []consent.Consent) (Submission, error)
	// BulkResults asks for a bulk request's results. done is false while
	// any item is enqueue; when done, results has one entry per
	// subrequestId, in their order, matched by subrequestId only.
	BulkResults(ctx context.Context, iysCode, brandCode, requestID string, subrequestIDs []string) (results []ItemResult, done bool, err error)
}

// Submission is an accepted bulk request.
type Submission struct {
	RequestID     string
	SubrequestIDs []string // one per sent consent, in the order sent
}

// ItemResult is İYS's word on one consent of a bulk request.
type ItemResult struct {
	SubrequestID string
	// Class is ClassAccepted for a success, else its code's class: an
	// outcome (already_in_iys, no_prior_record, ...) or what to do
	// (transient, configuration, ...).
	Class         consent.Class
	Code          consent.Code
	Message       string
	TransactionID string
}

// CallError is a failed İYS call, classified.
type CallError struct {
	Class   consent.Class
	Code    consent.Code // İYS's code, "" when none
	Message string       // İYS's message, or the error's text; never a body or a token
	// Refusal is set when İYS refused a bulk request whole because of some
	// of its items (a 4xx with an errors list, not about the token, the
	// rights, the pace or the request's shape): the rest may go again.
	Refusal *Refusal
	Err     error
}

// Refusal is İYS's word on a bulk request it refused whole.
type Refusal struct {
	// Named lists the refused consents by their position in the request,
	// each once; nil when İYS's errors did not name them for sure (no
	// index, an index out of range, an echoed value that is not the
	// consent's at that index). Then only halving the request finds them.
	Named []RefusedItem
	// Code and Message are the first error's: the verdict of a consent
	// refused alone.
	Code    consent.Code
	Message string
}

// RefusedItem is one consent a refusal names.
type RefusedItem struct {
	Position int // in the refused request, from 0
	Code     consent.Code
	Message  string
}

func (e *CallError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Message
}

// Unwrap gives the underlying error.
func (e *CallError) Unwrap() error { return e.Err }

// classify says what an error of an IYS call means.
func classify(err error) *CallError {
	var ce *CallError
	switch {
	case errors.As(err, &ce):
		if ce.Message == "" {
			c := *ce
			c.Message = err.Error()
			return &c
		}
		return ce
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &CallError{Class: consent.ClassTransient, Message: err.Error(), Err: err}
	}
	return &CallError{Class: consent.ClassUnknown, Message: err.Error(), Err: err}
}

// Puller pulls İYS-side changes of a connector. It is called first in each
// connector's run, after recovery and before any push; an error is
// reported and the push goes on.
type Puller interface {
	Pull(ctx context.Context, c consent.ConnectorRef, runID int64) error
}

// Observer hears of batches and failed requests, for metrics. Its methods
// are called from the engine's workers at once: they must be safe for
// concurrent use, and quick.
type Observer interface {
	BatchDone(BatchReport)
	RequestFailed(RequestFailure)
}

// BatchReport describes one finished batch.
type BatchReport struct {
	BrandCode string
	RunID     int64
	BatchID   int64
	RequestID string // "" when nothing was sent
	Size      int    // records claimed
	State     consent.BatchState
	Tally     consent.Tally // what its verdicts wrote; Tally.Outcomes by outcome
	Duration  time.Duration
}

// RequestFailure describes one İYS call that failed after the client's own
// retries.
type RequestFailure struct {
	BrandCode string
	Call      string // "submit" or "poll"
	Class     consent.Class
	Code      consent.Code
}
