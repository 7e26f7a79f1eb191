package sync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// errAbandoned: polling stopped (stop grace or poll timeout) before İYS
// finished; the batch stays submitted for the next run's recovery.
var errAbandoned = errors.New("polling stopped before İYS finished the request")

// push claims one batch of a connector and takes it to the end: pre-check,
// submit, save, poll, record. It calls claimed once its claim found records.
func (e *Engine) push(ctx context.Context, c *connRun, claimed func()) taskResult {
	if ctx.Err() != nil {
		return taskResult{}
	}
	var (
		batchID int64
		recs    []consent.Record
	)
	err := e.retryDB(ctx, c.log, "claim a batch", func(tctx context.Context) error {
		// A claim cut off by the run's end can commit unseen and leave its
		// records in flight until the next run: once begun it completes,
		// bounded by its try's timeout, and run hands the records back.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(tctx), e.opts.DBCallTimeout)
		defer cancel()
		claim := func(from consent.ClaimPos) (err error) {
			batchID, recs, err = e.st.ClaimBatchAfter(cctx, c.ref.ID, c.runID, e.opts.BatchSize, e.opts.Now(), from)
			return err
		}
		pos := c.claimFrom()
		err := claim(pos)
		if err == nil && len(recs) == 0 && pos != (consent.ClaimPos{}) {
			// Nothing after it: records due behind it (retries whose
			// time came, older consents imported meanwhile) from the start.
			c.claimRestart()
			err = claim(consent.ClaimPos{})
		}
		if err == nil && len(recs) > 0 {
			last := recs[len(recs)-1] // the batch comes in claim order
			c.claimedUpTo(consent.ClaimPos{ConsentDate: last.Consent.ConsentDate.Time(), ID: last.ID})
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return taskResult{}
		}
		return taskResult{fatal: fmt.Errorf("claim a batch: %w", err)}
	}
	if len(recs) == 0 {
		return taskResult{}
	}
	claimed()
	b := &batch{e: e, c: c, id: batchID, size: len(recs), start: time.Now()}
	return b.run(ctx, recs)
}

// batch is one batch on its way.
type batch struct {
	e     *Engine
	c     *connRun
	id    int64
	size  int
	start time.Time
	// requests are the bulk requests İYS accepted, each saved before any
	// polling: the batch's, or, when İYS refused that whole, several, each
	// a batch of its own (see refusal.go).
	requests []request
	// requestID names the batch's request in its log line and report: the
	// first accepted, or one İYS answered that could not be matched.
	requestID string
	iso       isolation
	verdicts  []consent.Verdict // of the batch's own records
	children  consent.Tally     // what the batches of its requests wrote
	fatal     error
}

// request is a bulk request İYS accepted and the records it carries.
type request struct {
	id      string
	batchID int64 // the batch holding its records: b.id, or one of its own
	sent    []consent.SentRecord
}

func (b *batch) run(ctx context.Context, recs []consent.Record) taskResult {
	e := b.e
	seen := make(map[consent.Key]bool, len(recs))
	now := consent.NewDate(e.opts.Now())
	var send []consent.Record
	for _, r := range recs {
		k := r.Consent.Key()
		if seen[k] {
			// The store's unique key makes this impossible; İYS would refuse
			// the whole request (H194). Refuse to send rather than guess.
			b.fatal = fmt.Errorf("our bug: the claimed batch %d holds %s %s %s twice", b.id,
				consent.MaskRecipient(k.Recipient), k.RecipientType, k.Type)
			e.log.Error("refusing to send a batch", zap.Int64("batch_id", b.id), zap.Error(b.fatal))
			return b.finish(0, consent.BatchReleased, b.retryAll(recs, consent.CodeDuplicateInRequest, b.fatal.Error()))
		}
		seen[k] = true
		if code := consent.PreCheck(r.Consent, now); code != "" {
			b.verdicts = append(b.verdicts, precheckVerdict(r, code))
			continue
		}
		send = append(send, r)
	}
	if len(send) == 0 {
		return b.finish(0, consent.BatchDone, nil)
	}

	// The batch in flight may outlive ctx by the stop grace: once submitted
	// it should rather finish than be left.
	gctx, cancel := e.graceful(ctx)
	defer cancel()
	if ctx.Err() != nil {
		return b.finish(0, consent.BatchReleased, b.releaseAll(send))
	}
	err := b.send(ctx, gctx, send)
	b.verdicts = append(b.verdicts, b.iso.verdicts()...)
	if err != nil {
		left := b.iso.undecided(send)
		if errors.Is(err, errStopped) {
			b.verdicts = append(b.verdicts, b.releaseAll(left)...)
		} else {
			b.verdicts = append(b.verdicts, b.requestFailed(gctx, "submit", b.requestID, err, left)...)
		}
	}
	return b.pollAndRecord(gctx, true)
}

// submit sends part as one bulk request. Accepted, the request is saved
// (its requestId and subrequestIds) before anything polls it, and kept in
// b.requests. Refused whole for its items, the refusal is returned; any
// other failure is the error.
func (b *batch) submit(ctx, gctx context.Context, part []consent.Record) (*Refusal, error) {
	e := b.e
	if ctx.Err() != nil {
		return nil, errStopped
	}
	items := make([]consent.Consent, len(part))
	for i, r := range part {
		items[i] = r.Consent
	}
	sub, err := e.iys.SubmitBulk(gctx, b.c.ref.IYSCode, b.c.ref.BrandCode, items)
	if err == nil && len(sub.SubrequestIDs) != len(part) {
		err = &CallError{Class: consent.ClassUnknown, Message: fmt.Sprintf(
			"İYS gave %d subrequest ids for %d consents", len(sub.SubrequestIDs), len(part))}
	}
	if err != nil {
		var ce *CallError
		if errors.As(err, &ce) && ce.Refusal != nil {
			e.observeFailure(b.c, "submit", classify(err))
			return ce.Refusal, nil
		}
		if b.requestID == "" {
			b.requestID = sub.RequestID
		}
		return nil, err
	}
	if b.requestID == "" {
		b.requestID = sub.RequestID
	}
	ids := make([]int64, len(part))
	sent := make([]consent.SentRecord, len(part))
	for i, r := range part {
		ids[i] = r.ID
		sent[i] = consent.SentRecord{Record: r, SubrequestID: sub.SubrequestIDs[i]}
		b.iso.decide(r.ID)
	}
	rq := request{id: sub.RequestID, batchID: b.id, sent: sent}
	sctx, scancel := e.bg(ctx)
	err = e.retryDB(sctx, b.c.log, "save a bulk request", func(ctx context.Context) error {
		if b.iso.refusals == 0 {
			return e.st.SaveSubmission(ctx, b.id, sub.RequestID, ids, sub.SubrequestIDs)
		}
		child, err := e.st.SaveSubRequest(ctx, b.id, sub.RequestID, ids, sub.SubrequestIDs)
		if err == nil {
			rq.batchID = child
		} // else its records stay this batch's
		return err
	})
	scancel()
	if err != nil {
		// İYS has the request: poll it all the same; if the results cannot
		// be written either, the next run hands the records back and sends
		// them again, which İYS answers with H174 (already there).
		b.c.log.Error("could not save a bulk request before polling it", zap.Int64("batch_id", b.id),
			zap.String("request_id", sub.RequestID), zap.Error(err))
	}
	b.requests = append(b.requests, rq)
	return nil, nil
}

// recoverBatch polls a batch a dead run left submitted, and records it.
func (e *Engine) recoverBatch(ctx context.Context, c *connRun, sb consent.SubmittedBatch) taskResult {
	b := &batch{e: e, c: c, id: sb.ID, size: len(sb.Items), start: time.Now(), requestID: sb.RequestID}
	rq := request{id: sb.RequestID, batchID: sb.ID}
	for _, it := range sb.Items {
		if it.SubrequestID == "" {
			// Not sent (refused by the pre-check, its verdict not written
			// yet): back to pending, to be checked again.
			b.verdicts = append(b.verdicts, releaseVerdict(it.Record))
			continue
		}
		rq.sent = append(rq.sent, it)
	}
	if len(rq.sent) > 0 {
		b.requests = []request{rq}
	}
	gctx, cancel := e.graceful(ctx)
	defer cancel()
	return b.pollAndRecord(gctx, false)
}

// pollAndRecord polls each of the batch's requests until İYS is done with
// it, then writes every verdict: a request that is a batch of its own at
// once, the batch's own records last. countSent says whether the records
// sent count as sent by this run (not when recovering).
func (b *batch) pollAndRecord(gctx context.Context, countSent bool) taskResult {
	e := b.e
	judged, left := b.iso.judged() > 0, false
	nSent := 0
	if countSent {
		nSent = b.iso.judged()
	}
	for i, rq := range b.requests {
		// Requests sent before one İYS has finished are likely finished
		// too: ask for them at once.
		first := e.opts.PollInitial
		if i > 0 {
			first = 0
		}
		vs, state, err := b.pollRequest(gctx, rq, first)
		if err != nil {
			// Left submitted: the next run polls it again.
			b.c.log.Warn("bulk request left for the next run: İYS had not finished it", zap.Int64("batch_id", rq.batchID),
				zap.String("request_id", rq.id), zap.Duration("duration", time.Since(b.start)))
			left = left || rq.batchID == b.id
			continue
		}
		sent := 0
		if countSent {
			sent = len(rq.sent)
		}
		if rq.batchID == b.id {
			b.verdicts = append(b.verdicts, vs...)
			judged = judged || state == consent.BatchDone
			nSent += sent
			continue
		}
		ctx, cancel := e.bg(context.Background())
		t, err := e.st.FinishBatch(ctx, b.c.runID, rq.batchID, sent, state, vs)
		cancel()
		if err != nil {
			b.c.log.Error("could not record a batch's results", zap.Int64("batch_id", rq.batchID),
				zap.String("request_id", rq.id), zap.Error(err))
			if b.fatal == nil {
				b.fatal = fmt.Errorf("record batch %d: %w", rq.batchID, err)
			}
			continue
		}
		b.children.Add(t)
	}
	if left {
		return taskResult{claimed: true, tally: b.children, fatal: b.fatal}
	}
	state := consent.BatchDone
	if !judged {
		state = consent.BatchReleased
	}
	return b.finish(nSent, state, nil)
}

// pollRequest polls one request to its verdicts: İYS's results (state
// done), or, when polling failed, the records handed back as the failure's
// class says (state released). The error is errAbandoned.
func (b *batch) pollRequest(gctx context.Context, rq request, first time.Duration) ([]consent.Verdict, consent.BatchState, error) {
	e := b.e
	results, err := b.poll(gctx, rq, first)
	if errors.Is(err, errAbandoned) {
		return nil, "", err
	}
	if err != nil {
		recs := make([]consent.Record, len(rq.sent))
		for i, s := range rq.sent {
			recs[i] = s.Record
		}
		return b.requestFailed(gctx, "poll", rq.id, err, recs), consent.BatchReleased, nil
	}
	vs := make([]consent.Verdict, len(rq.sent))
	for i, s := range rq.sent {
		v, stop := e.verdictFor(s.Record, results[i])
		if stop && b.fatal == nil {
			b.fatal = configError(results[i].Code, results[i].Message)
		}
		if results[i].Class == consent.ClassOurBug {
			b.c.log.Error("İYS refused a consent as a request we should not have built",
				zap.Int64("batch_id", rq.batchID), zap.String("code", string(results[i].Code)))
		}
		vs[i] = v
	}
	return vs, consent.BatchDone, nil
}

// poll asks for a request's results, first after the wait first, then with
// a growing wait until İYS is done. Transient failures are waited out; it
// gives up (errAbandoned) when gctx ends or PollTimeout passes.
func (b *batch) poll(gctx context.Context, rq request, first time.Duration) ([]ItemResult, error) {
	e := b.e
	subs := make([]string, len(rq.sent))
	for i, s := range rq.sent {
		subs[i] = s.SubrequestID
	}
	pctx, cancel := context.WithTimeout(gctx, e.opts.PollTimeout)
	defer cancel()
	wait := first
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-pctx.Done():
			return nil, errAbandoned
		case <-t.C:
		}
		res, done, err := e.iys.BulkResults(pctx, b.c.ref.IYSCode, b.c.ref.BrandCode, rq.id, subs)
		switch {
		case err == nil && done:
			if len(res) != len(subs) {
				return nil, &CallError{Class: consent.ClassUnknown, Message: fmt.Sprintf(
					"İYS gave %d results for %d consents", len(res), len(subs))}
			}
			for i := range res {
				if res[i].SubrequestID != subs[i] {
					return nil, &CallError{Class: consent.ClassUnknown, Message: "results not matched by subrequestId"}
				}
			}
			return res, nil
		case err != nil:
			if pctx.Err() != nil {
				return nil, errAbandoned
			}
			f := classify(err)
			e.observeFailure(b.c, "poll", f)
			switch f.Class {
			case consent.ClassTransient, consent.ClassToken, consent.ClassLoginLimit:
				b.c.log.Warn("polling a bulk request failed; polling on", zap.Int64("batch_id", rq.batchID),
					zap.String("request_id", rq.id), zap.String("class", string(f.Class)), zap.Error(err))
			default:
				return nil, err
			}
		}
		wait = min(max(wait*2, e.opts.PollInitial), e.opts.PollMax)
		t.Reset(wait)
	}
}

// requestFailed hands back the records of a request that failed whole, as
// its class says, and notes what stops the connector. requestID is the
// request's, when İYS gave one.
func (b *batch) requestFailed(gctx context.Context, call, requestID string, err error, recs []consent.Record) []consent.Verdict {
	e := b.e
	if gctx.Err() != nil && errors.Is(err, gctx.Err()) {
		// Stopped (shutdown, window, grace over) before İYS answered.
		return b.releaseAll(recs)
	}
	f := classify(err)
	e.observeFailure(b.c, call, f)
	fields := []zap.Field{zap.Int64("batch_id", b.id), zap.Int("records", len(recs)), zap.String("call", call),
		zap.String("class", string(f.Class)), zap.String("code", string(f.Code)), zap.Error(err)}
	if requestID != "" {
		fields = append(fields, zap.String("request_id", requestID))
	}
	switch f.Class {
	case consent.ClassTransient, consent.ClassToken:
		b.c.log.Warn("İYS request failed; its records will be tried again", fields...)
		return b.retryAll(recs, f.Code, f.Message)
	case consent.ClassConfiguration:
		b.fatal = configError(f.Code, f.Message)
		b.c.log.Error("İYS refused the request: stopping this connector's run", fields...)
		return b.releaseAll(recs)
	case consent.ClassLoginLimit:
		b.fatal = fmt.Errorf("İYS's hourly login cap was reached (H084): no login for about an hour; the records stay pending: %s", f.Message)
		b.c.log.Error("İYS refused to log us in: stopping this connector's run", fields...)
		return b.releaseAll(recs)
	}
	if call == "poll" && f.Class != consent.ClassOurBug {
		// İYS no longer knows the request, or answers it strangely: send
		// the records again, counting the try.
		b.c.log.Error("could not get a bulk request's results; its records will be sent again", fields...)
		return b.retryAll(recs, f.Code, f.Message)
	}
	// Our bug (H194, H125), a value the pre-check let through, an answer
	// that does not match: sending the same again would fail the same way.
	// Count the try, so that the records fail in the end, and stop.
	b.fatal = fmt.Errorf("İYS refused a %s request we should not have made (%s %s): %s; this is a bug of iys-sync, please report it",
		call, f.Class, f.Code, f.Message)
	b.c.log.Error("İYS refused a request we should not have made: stopping this connector's run", fields...)
	return b.retryAll(recs, f.Code, f.Message)
}

func configError(code consent.Code, msg string) error {
	c := ""
	if code != "" {
		c = " " + string(code)
	}
	return fmt.Errorf("İYS refused this connector's requests (configuration%s: %s): check the API user and, for a solution partner, "+
		"the brand's İş Ortaklığı rights per channel in the İYS panel; the records stay pending, their tries not counted", c, msg)
}

// finish writes the batch's verdicts (those gathered plus more), closes the
// batch, and logs one line, which counts the batches of its requests too.
func (b *batch) finish(nSent int, state consent.BatchState, more []consent.Verdict) taskResult {
	e := b.e
	vs := append(b.verdicts, more...)
	ctx, cancel := e.bg(b.c.ctx)
	defer cancel()
	var tally consent.Tally
	err := e.retryDB(ctx, b.c.log, "record a batch's results", func(ctx context.Context) error {
		var err error
		tally, err = e.st.FinishBatch(ctx, b.c.runID, b.id, nSent, state, vs)
		return err
	})
	tally.Add(b.children)
	res := taskResult{claimed: true, tally: tally, fatal: b.fatal}
	if err != nil {
		b.c.log.Error("could not record a batch's results", zap.Int64("batch_id", b.id),
			zap.String("request_id", b.requestID), zap.Error(err))
		if res.fatal == nil {
			res.fatal = fmt.Errorf("record batch %d: %w", b.id, err)
		}
		res.tally = b.children
		return res
	}
	d := time.Since(b.start)
	fields := []zap.Field{zap.Int64("batch_id", b.id), zap.Int("size", b.size), zap.String("state", string(state)),
		zap.Int("sent", tally.Sent), zap.Int("accepted", tally.Accepted), zap.Int("rejected", tally.Rejected),
		zap.Int("retried", tally.Retried), zap.Int("failed", tally.Failed), zap.Int("released", tally.Released),
		zap.Int("stale", tally.Stale), zap.Duration("duration", d)}
	if b.requestID != "" {
		fields = append(fields, zap.String("request_id", b.requestID))
	}
	if b.iso.refusals > 0 {
		ids := make([]int64, len(b.requests))
		for i, rq := range b.requests {
			ids[i] = rq.batchID
		}
		fields = append(fields, zap.Int("refused_requests", b.iso.refusals), zap.Int("refused_records", b.iso.judged()),
			zap.Int("requests", len(b.requests)), zap.Int64s("request_batch_ids", ids))
	}
	if len(tally.Outcomes) > 0 {
		fields = append(fields, zap.Any("outcomes", tally.Outcomes))
	}
	b.c.log.Info("batch finished", fields...)
	if o := e.opts.Observer; o != nil {
		o.BatchDone(BatchReport{BrandCode: b.c.ref.BrandCode, RunID: b.c.runID, BatchID: b.id, RequestID: b.requestID,
			Size: b.size, State: state, Tally: tally, Duration: d})
	}
	return res
}

func (e *Engine) observeFailure(c *connRun, call string, f *CallError) {
	if o := e.opts.Observer; o != nil {
		o.RequestFailed(RequestFailure{BrandCode: c.ref.BrandCode, Call: call, Class: f.Class, Code: f.Code})
	}
}

// verdictFor maps İYS's result on one record to its verdict; stop is true
// when the result says the connector's configuration is wrong.
func (e *Engine) verdictFor(r consent.Record, res ItemResult) (v consent.Verdict, stop bool) {
	v = consent.Verdict{ID: r.ID, Version: r.Version, Code: res.Code, Message: res.Message,
		TransactionID: res.TransactionID, Tried: true}
	if res.Code == consent.CodeFutureDate && !r.Consent.ConsentDate.After(consent.NewDate(e.opts.Now().Add(consent.MaxAhead))) {
		// A date we took in, and sent once our clock passed it: İYS's clock
		// runs behind. Not a verdict: try again after a delay, the try
		// counted, so that the record fails in the end if İYS keeps
		// refusing.
		return e.retry(r, res.Code, res.Message), false
	}
	if o, ok := consent.OutcomeOf(res.Class); ok {
		v.State = consent.StateRejected
		if o.Synced() {
			v.State = consent.StateSynced
		}
		v.Outcome = o
		return v, false
	}
	if res.Class == consent.ClassConfiguration {
		v.State, v.Tried, v.TransactionID = consent.StatePending, false, ""
		return v, true
	}
	return e.retry(r, res.Code, res.Message), false
}

// retry is a record's verdict after a transient failure: pending again
// after a growing delay, or failed once its budget is spent.
func (e *Engine) retry(r consent.Record, code consent.Code, msg string) consent.Verdict {
	v := consent.Verdict{ID: r.ID, Version: r.Version, Code: code, Message: msg, Tried: true}
	tries := r.Attempts + 1
	if tries >= e.opts.RetryBudget {
		v.State = consent.StateFailed
		if v.Message == "" {
			v.Message = "failed after " + fmt.Sprint(tries) + " tries"
		}
		return v
	}
	v.State = consent.StatePending
	v.RetryIn = e.retryDelay(tries)
	return v
}

// retryDelay is the wait after the n-th try: RetryBase doubling per try, up
// to RetryMax, with ±20% jitter so that records failed together spread.
func (e *Engine) retryDelay(n int) time.Duration {
	d := e.opts.RetryBase
	for i := 1; i < n && d < e.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, e.opts.RetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (b *batch) retryAll(recs []consent.Record, code consent.Code, msg string) []consent.Verdict {
	out := make([]consent.Verdict, len(recs))
	for i, r := range recs {
		out[i] = b.e.retry(r, code, msg)
	}
	return out
}

func (b *batch) releaseAll(recs []consent.Record) []consent.Verdict {
	out := make([]consent.Verdict, len(recs))
	for i, r := range recs {
		out[i] = releaseVerdict(r)
	}
	return out
}

// releaseVerdict hands a record back to pending, due at once, its tries
// not counted.
func releaseVerdict(r consent.Record) consent.Verdict {
	return consent.Verdict{ID: r.ID, Version: r.Version, State: consent.StatePending}
}

// precheckVerdict rejects a record the local pre-check refused: never sent.
func precheckVerdict(r consent.Record, code consent.Code) consent.Verdict {
	o, ok := consent.OutcomeOf(consent.Classify(code))
	if !ok || o.Synced() {
		o = consent.OutcomeInvalid
	}
	return consent.Verdict{ID: r.ID, Version: r.Version, State: consent.StateRejected, Outcome: o, Code: code,
		Message: precheckMessage(code), Tried: true}
}

// precheckMessage says why the pre-check refused a consent, in the words
// of İYS's rule.
func precheckMessage(code consent.Code) string {
	msg, ok := precheckMessages[code]
	if !ok {
		msg = "refused by İYS's rules"
	}
	return "not sent: " + msg
}

var precheckMessages = map[consent.Code]string{
	consent.CodeBefore2015:           "the consent date is before 2015-05-01 00:00:00",
	consent.CodeFutureDate:           "the consent date is in the future",
	consent.CodeBadHS2015Date:        "HS_2015 takes only the date 2015-05-01 00:00:00",
	consent.CodeBadDateFormat:        "the consent date is missing or unreadable",
	consent.CodeBadDate:              "the consent date is not valid",
	consent.CodeUnknownType:          "unknown consent type",
	consent.CodeUnknownStatus:        "unknown status: want ONAY or RET",
	consent.CodeUnknownSource:        "the source is not one a brand may record (HS_KARAR takes RET only)",
	consent.CodeUnknownRecipientType: "unknown recipient type",
	consent.CodeUnknownRecipient:     "unknown recipient",
	consent.CodeBadEmail:             "not a valid email address",
	consent.CodeBadPhone:             "not a valid phone number (E.164)",
}
