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
// submit, save, poll, record.
func (e *Engine) push(ctx context.Context, c *connRun) taskResult {
	if ctx.Err() != nil {
		return taskResult{}
	}
	var (
		batchID int64
		recs    []consent.Record
	)
	err := e.retryDB(ctx, c.log, "claim a batch", func(ctx context.Context) error {
		var err error
		batchID, recs, err = e.st.ClaimBatch(ctx, c.ref.ID, c.runID, e.opts.BatchSize)
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
	b := &batch{e: e, c: c, id: batchID, size: len(recs), start: time.Now()}
	return b.run(ctx, recs)
}

// batch is one batch on its way.
type batch struct {
	e         *Engine
	c         *connRun
	id        int64
	size      int
	start     time.Time
	requestID string
	verdicts  []consent.Verdict
	fatal     error
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
	items := make([]consent.Consent, len(send))
	for i, r := range send {
		items[i] = r.Consent
	}
	sub, err := e.iys.SubmitBulk(gctx, b.c.ref.IYSCode, b.c.ref.BrandCode, items)
	if err == nil && len(sub.SubrequestIDs) != len(send) {
		err = &CallError{Class: consent.ClassUnknown, Message: fmt.Sprintf(
			"İYS gave %d subrequest ids for %d consents", len(sub.SubrequestIDs), len(send))}
	}
	if err != nil {
		b.requestID = sub.RequestID
		return b.finish(0, consent.BatchReleased, b.requestFailed(gctx, "submit", err, send))
	}
	b.requestID = sub.RequestID
	ids := make([]int64, len(send))
	for i, r := range send {
		ids[i] = r.ID
	}
	sctx, scancel := e.bg(ctx)
	err = e.retryDB(sctx, b.c.log, "save a bulk request", func(ctx context.Context) error {
		return e.st.SaveSubmission(ctx, b.id, sub.RequestID, ids, sub.SubrequestIDs)
	})
	scancel()
	if err != nil {
		// İYS has the request: poll it all the same; if the results cannot
		// be written either, the next run hands the records back and sends
		// them again, which İYS answers with H174 (already there).
		b.c.log.Error("could not save a bulk request before polling it", zap.Int64("batch_id", b.id),
			zap.String("request_id", sub.RequestID), zap.Error(err))
	}
	sent := make([]consent.SentRecord, len(send))
	for i, r := range send {
		sent[i] = consent.SentRecord{Record: r, SubrequestID: sub.SubrequestIDs[i]}
	}
	return b.pollAndRecord(gctx, sent, len(send))
}

// recoverBatch polls a batch a dead run left submitted, and records it.
func (e *Engine) recoverBatch(ctx context.Context, c *connRun, sb consent.SubmittedBatch) taskResult {
	b := &batch{e: e, c: c, id: sb.ID, size: len(sb.Items), start: time.Now(), requestID: sb.RequestID}
	var sent []consent.SentRecord
	for _, it := range sb.Items {
		if it.SubrequestID == "" {
			// Not sent (refused by the pre-check, its verdict not written
			// yet): back to pending, to be checked again.
			b.verdicts = append(b.verdicts, releaseVerdict(it.Record))
			continue
		}
		sent = append(sent, it)
	}
	if len(sent) == 0 {
		return b.finish(0, consent.BatchReleased, nil)
	}
	gctx, cancel := e.graceful(ctx)
	defer cancel()
	return b.pollAndRecord(gctx, sent, 0)
}

// pollAndRecord polls the batch's request until İYS is done, then writes
// every verdict.
func (b *batch) pollAndRecord(gctx context.Context, sent []consent.SentRecord, nSent int) taskResult {
	e := b.e
	subs := make([]string, len(sent))
	for i, s := range sent {
		subs[i] = s.SubrequestID
	}
	results, err := b.poll(gctx, subs)
	if errors.Is(err, errAbandoned) {
		b.c.log.Warn("bulk request left for the next run: İYS had not finished it",
			zap.Int64("batch_id", b.id), zap.String("request_id", b.requestID), zap.Duration("duration", time.Since(b.start)))
		return taskResult{claimed: true}
	}
	if err != nil {
		recs := make([]consent.Record, len(sent))
		for i, s := range sent {
			recs[i] = s.Record
		}
		return b.finish(nSent, consent.BatchReleased, b.requestFailed(gctx, "poll", err, recs))
	}
	for i, s := range sent {
		v, stop := e.verdictFor(s.Record, results[i])
		if stop && b.fatal == nil {
			b.fatal = configError(results[i].Code, results[i].Message)
		}
		if results[i].Class == consent.ClassOurBug {
			b.c.log.Error("İYS refused a consent as a request we should not have built",
				zap.Int64("batch_id", b.id), zap.String("code", string(results[i].Code)))
		}
		b.verdicts = append(b.verdicts, v)
	}
	return b.finish(nSent, consent.BatchDone, nil)
}

// poll asks for the request's results with a growing wait until İYS is
// done. Transient failures are waited out; it gives up (errAbandoned) when
// gctx ends or PollTimeout passes.
func (b *batch) poll(gctx context.Context, subs []string) ([]ItemResult, error) {
	e := b.e
	pctx, cancel := context.WithTimeout(gctx, e.opts.PollTimeout)
	defer cancel()
	wait := e.opts.PollInitial
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-pctx.Done():
			return nil, errAbandoned
		case <-t.C:
		}
		res, done, err := e.iys.BulkResults(pctx, b.c.ref.IYSCode, b.c.ref.BrandCode, b.requestID, subs)
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
				b.c.log.Warn("polling a bulk request failed; polling on", zap.Int64("batch_id", b.id),
					zap.String("request_id", b.requestID), zap.String("class", string(f.Class)), zap.Error(err))
			default:
				return nil, err
			}
		}
		wait = min(wait*2, e.opts.PollMax)
		t.Reset(wait)
	}
}

// requestFailed hands back the records of a request that failed whole, as
// its class says, and notes what stops the connector.
func (b *batch) requestFailed(gctx context.Context, call string, err error, recs []consent.Record) []consent.Verdict {
	e := b.e
	if gctx.Err() != nil && errors.Is(err, gctx.Err()) {
		// Stopped (shutdown, window, grace over) before İYS answered.
		return b.releaseAll(recs)
	}
	f := classify(err)
	e.observeFailure(b.c, call, f)
	fields := []zap.Field{zap.Int64("batch_id", b.id), zap.Int("records", len(recs)), zap.String("call", call),
		zap.String("class", string(f.Class)), zap.String("code", string(f.Code)), zap.Error(err)}
	if b.requestID != "" {
		fields = append(fields, zap.String("request_id", b.requestID))
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
// batch, and logs one line.
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
	res := taskResult{claimed: true, tally: tally, fatal: b.fatal}
	if err != nil {
		b.c.log.Error("could not record a batch's results", zap.Int64("batch_id", b.id),
			zap.String("request_id", b.requestID), zap.Error(err))
		if res.fatal == nil {
			res.fatal = fmt.Errorf("record batch %d: %w", b.id, err)
		}
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
