package sync

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// İYS refuses a bulk request whole when some of its consents hold a value
// it will not take (a 4xx whose errors list names each one by index). The
// others must not wait for a person: the batch isolates the refused ones
// and sends the rest again at once, their tries not counted, in new
// requests, each saved as a batch of its own (Store.SaveSubRequest).
//
//   - When the errors name the refused consents for sure (an index in range,
//     counting from 1, and the echoed value, if any, the consent's), each
//     gets İYS's code as its verdict, and the others go again.
//   - Otherwise nothing is guessed: the request is halved and both halves
//     sent, recursively, until each refused consent stands alone and gets
//     its verdict. That costs at most about 2 × refused × log2(size) extra
//     requests.
//   - A refusal that is not about the consents (every one refused alone with
//     the same code, no request of the batch accepted) would cost 2 × size
//     requests: after suspectAlone such consents it is taken for our bug,
//     as a request we should not have made.
//
// Each accepted request is saved before any polling, so a run that dies
// mid-way leaves batches to poll, and records of the first batch (refused,
// or not sent again yet) to hand back.

const (
	// maxNamedRounds bounds the requests sent again after refusals that named
	// their consents; beyond it the rest is halved instead.
	maxNamedRounds = 10
	// suspectAlone consents refused alone with one code, while İYS accepted
	// none of the batch's requests, mean the refusal is not about them.
	suspectAlone = 4
)

// errStopped: the run ended while a refused request's consents were being
// sent again; those not sent yet are handed back.
var errStopped = errors.New("the run ended before every consent of a refused bulk request was sent again")

// isolation is what a batch learnt from İYS's refusals.
type isolation struct {
	refusals int                // requests İYS refused whole
	named    []consent.Verdict  // consents a refusal named: İYS's verdict
	alone    []consent.Verdict  // consents refused alone, found by halving
	decided  map[int64]struct{} // records with a verdict or in an accepted request
}

func (iso *isolation) decide(id int64) {
	if iso.decided == nil {
		iso.decided = map[int64]struct{}{}
	}
	iso.decided[id] = struct{}{}
}

// undecided are the records of recs neither judged nor in an accepted request.
func (iso *isolation) undecided(recs []consent.Record) []consent.Record {
	var out []consent.Record
	for _, r := range recs {
		if _, ok := iso.decided[r.ID]; !ok {
			out = append(out, r)
		}
	}
	return out
}

func (iso *isolation) judged() int { return len(iso.named) + len(iso.alone) }

func (iso *isolation) verdicts() []consent.Verdict {
	return append(append([]consent.Verdict(nil), iso.named...), iso.alone...)
}

// send submits recs and, when İYS refuses the request whole for some of
// its consents, isolates them. An error leaves the undecided records to the
// caller: errStopped (hand them back), or a failure of a request.
func (b *batch) send(ctx, gctx context.Context, recs []consent.Record) error {
	ref, err := b.submit(ctx, gctx, recs)
	if err != nil || ref == nil {
		return err
	}
	b.c.log.Warn("İYS refused a bulk request whole: sending its consents again without those it refuses",
		zap.Int64("batch_id", b.id), zap.Int("records", len(recs)), zap.String("code", string(ref.Code)),
		zap.Int("named", len(ref.Named)))
	return b.isolate(ctx, gctx, recs, ref)
}

// isolate finds the consents İYS refuses in part, a request it refused
// whole (ref), and sends the others.
func (b *batch) isolate(ctx, gctx context.Context, part []consent.Record, ref *Refusal) error {
	b.iso.refusals++
	for round := 0; ; round++ {
		if len(part) == 1 {
			return b.refusedAlone(part[0], ref)
		}
		if round >= maxNamedRounds || !namesFor(ref.Named, len(part)) {
			return b.bisect(ctx, gctx, part)
		}
		refused := make(map[int]bool, len(ref.Named))
		for _, n := range ref.Named {
			refused[n.Position] = true
			b.iso.named = append(b.iso.named, b.judge(part[n.Position], n.Code, n.Message))
		}
		rest := make([]consent.Record, 0, len(part)-len(refused))
		for i, r := range part {
			if !refused[i] {
				rest = append(rest, r)
			}
		}
		if len(rest) == 0 {
			return nil
		}
		next, err := b.submit(ctx, gctx, rest)
		if err != nil || next == nil {
			return err
		}
		b.iso.refusals++
		part, ref = rest, next
	}
}

// bisect sends both halves of part, then isolates within each one refused.
func (b *batch) bisect(ctx, gctx context.Context, part []consent.Record) error {
	halves := [2][]consent.Record{part[:len(part)/2], part[len(part)/2:]}
	var refs [2]*Refusal
	for i, h := range halves {
		ref, err := b.submit(ctx, gctx, h)
		if err != nil {
			return err
		}
		refs[i] = ref
	}
	for i, h := range halves {
		if refs[i] == nil {
			continue
		}
		if err := b.isolate(ctx, gctx, h, refs[i]); err != nil {
			return err
		}
	}
	return nil
}

// refusedAlone gives a consent refused alone its verdict. Found by halving,
// the verdict stands unless the refusal proves not to be about consents.
func (b *batch) refusedAlone(r consent.Record, ref *Refusal) error {
	if namesFor(ref.Named, 1) {
		n := ref.Named[0]
		b.iso.named = append(b.iso.named, b.judge(r, n.Code, n.Message))
		return nil
	}
	b.iso.alone = append(b.iso.alone, b.judge(r, ref.Code, ref.Message))
	if len(b.requests) > 0 || len(b.iso.alone) < suspectAlone {
		return nil
	}
	for _, v := range b.iso.alone[1:] {
		if v.Code != ref.Code {
			return nil
		}
	}
	n := len(b.iso.alone)
	for _, v := range b.iso.alone {
		delete(b.iso.decided, v.ID)
	}
	b.iso.alone = nil
	return &CallError{Class: consent.ClassOurBug, Code: ref.Code, Message: fmt.Sprintf(
		"İYS refused a bulk request whole, then each of %d consents sent alone with the same code, and none of the "+
			"batch's requests: the refusal is not about the consents (%s)", n, ref.Message)}
}

// judge is the verdict of a consent a refusal names, as for a bulk result.
func (b *batch) judge(r consent.Record, code consent.Code, msg string) consent.Verdict {
	b.iso.decide(r.ID)
	v, stop := b.e.verdictFor(r, ItemResult{Class: consent.Classify(code), Code: code, Message: msg})
	if stop && b.fatal == nil {
		b.fatal = configError(code, msg)
	}
	return v
}

// namesFor reports whether named names consents of a request of n for sure:
// at least one, each in range, none twice.
func namesFor(named []RefusedItem, n int) bool {
	if len(named) == 0 {
		return false
	}
	seen := make(map[int]bool, len(named))
	for _, it := range named {
		if it.Position < 0 || it.Position >= n || seen[it.Position] {
			return false
		}
		seen[it.Position] = true
	}
	return true
}
