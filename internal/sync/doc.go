// Package sync is the sync engine: one run pushes every pending consent of
// the connectors it serves to İYS, in bulk requests, until nothing is
// pending, the window ends or it is stopped.
//
// Its name shadows the standard library's sync: this package imports that
// one as gosync, and callers import this one under a clear name:
//
//	import engine "github.com/iys-sync/iys-sync/internal/sync"
//
// # A run
//
// Run lists the connectors, takes each one's run lock (Store.LockConnectors:
// a connector locked by another process or replica is skipped and reported
// so), records a run per connector (one statement for all of them, which
// also closes the runs a dead process left running, as failed: "killed
// (closed by run N)", and tells which connectors have batches left), and
// then Options.Concurrency workers serve the connectors round-robin, one
// task at a time, so that a large brand cannot starve a small one. Per
// connector, in order:
//
//  1. Recovery, of a connector a dead run left batches only: batches
//     claimed without a requestId give their records back to pending;
//     batches left submitted with one are polled and recorded, never sent
//     again.
//  2. Pull (Options.Puller, when set): İYS-side changes first.
//  3. Push, batch after batch: claim up to BatchSize due pending records
//     (one statement, FOR UPDATE SKIP LOCKED; a record dated ahead of
//     Options.Now, within consent.MaxAhead, is not due before its date);
//     refuse locally what
//     consent.PreCheck refuses (rejected, outcome invalid, never sent);
//     submit the rest as one asynchronous bulk request; save the requestId
//     and the subrequestIds before polling; poll with backoff until no item
//     is enqueue; match results by subrequestId only; write every verdict
//     in one statement guarded by batch, state and version, so that a newer
//     consent imported meanwhile stays pending and goes out next. When İYS
//     refuses the request whole for some of its consents, those get their
//     verdict and the rest goes again at once (see refusal.go).
//
// A connector is done when nothing is due: with retries (or early dates)
// due within Options.RetryWait (and before the deadline) it waits for them,
// else it stops, partial. When every connector is done, what each left is
// read, and the runs' ends written, in one statement each for all of them.
//
// An idle connector (nothing pending, nothing new at İYS) costs its two
// requests of the changes feed, the pull's and the claim's few statements,
// and its share of the run's start and end: TestIdleConnectorMakesOnlyItsPullRequests.
//
// # Failures
//
// Per record: a verdict class with an outcome (consent.OutcomeOf) is final;
// a transient one puts the record back to pending with a growing delay until
// Options.RetryBudget tries are spent, then it fails with the last error.
// Per request: a transient failure (after the client's own retries) hands
// the batch back the same way; a configuration refusal (403, login refused,
// İYS's login cap) hands it back without counting a try and stops the
// connector's run as failed, saying what to fix; a request İYS should never
// have received (our bug) is handed back, counted, and stops the connector
// loudly. Once the run's context ends (shutdown, window), no batch is
// claimed; the batches in flight get Options.StopGrace to finish, then a
// batch without a saved requestId is handed back and one with a saved
// requestId is left submitted for the next run's recovery.
//
// Per database error: one Options.Transient calls transient (a restart, a
// lost connection) holds the step up, which is tried again with backoff
// until the window ends (writing down a batch's results: until
// Options.WriteGrace after); any other stops the connector's run. A lost
// run lock is taken again once the database answers; a connector another
// run took meanwhile stops. The Scheduler runs again, within the window,
// the connectors that have not finished the night.
package sync
