package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A redrive puts rejected and failed records back to pending with their
// tries reset and a new version, counted by outcome and recorded; an answer
// to the send before it cannot overwrite the records once they are sent
// again.
func TestRedriveRequeuesAndOutrunsLateAnswers(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 4)...)
	run := startRun(t, s, c.ID)
	b1, recs := claim(t, s, c.ID, run, 4)
	verdict := func(r consent.Record, st consent.State, o consent.Outcome) consent.Verdict {
		return consent.Verdict{ID: r.ID, Version: r.Version, State: st, Outcome: o, Tried: true}
	}
	_, err := s.FinishBatch(ctx, run, b1, 4, consent.BatchDone, []consent.Verdict{
		verdict(recs[0], consent.StateRejected, consent.OutcomeNoPriorRecord),
		verdict(recs[1], consent.StateRejected, consent.OutcomeTooOld),
		verdict(recs[2], consent.StateFailed, ""),
		verdict(recs[3], consent.StateSynced, consent.OutcomeAccepted),
	})
	if err != nil {
		t.Fatal(err)
	}

	// A dry run counts and changes nothing; a filter on outcomes takes those only.
	only := RedriveFilter{States: []consent.State{consent.StateRejected}, Outcomes: []consent.Outcome{consent.OutcomeNoPriorRecord}}
	res, err := s.Redrive(ctx, c.ID, only, "ayse", true)
	if err != nil || res.Matched != 1 || res.ByOutcome["no_prior_record"] != 1 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if n := count(t, s, `SELECT count(*) FROM consents WHERE state = 'pending'`); n != 0 {
		t.Fatalf("a dry run put %d records back to pending", n)
	}
	if _, err := s.Redrive(ctx, c.ID, RedriveFilter{States: []consent.State{consent.StateFailed}, Outcomes: only.Outcomes}, "ayse", true); err == nil {
		t.Error("outcomes with the state failed alone: accepted")
	}
	if _, err := s.Redrive(ctx, c.ID, RedriveFilter{Outcomes: []consent.Outcome{consent.OutcomeAccepted}}, "ayse", true); err == nil {
		t.Error("a synced outcome: accepted")
	}
	// Verdicts written since tomorrow: none.
	res, err = s.Redrive(ctx, c.ID, RedriveFilter{Since: time.Now().Add(24 * time.Hour)}, "ayse", false)
	if err != nil || res.Matched != 0 {
		t.Fatalf("since tomorrow: %+v %v", res, err)
	}

	res, err = s.Redrive(ctx, c.ID, RedriveFilter{Since: time.Now().Add(-time.Hour)}, "ayse", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"no_prior_record": 1, "too_old": 1, "failed": 1}; res.Matched != 3 || len(res.ByOutcome) != 3 ||
		res.ByOutcome["no_prior_record"] != 1 || res.ByOutcome["too_old"] != 1 || res.ByOutcome["failed"] != 1 {
		t.Fatalf("redrive: %+v, want 3 of %v", res, want)
	}
	got := records(t, s, c.ID)
	for _, r := range recs[:3] {
		now := got[r.Consent.Recipient+"/MESAJ"]
		if now.State != consent.StatePending || now.Outcome.Valid || now.Attempts != 0 || now.Version != r.Version+1 {
			t.Errorf("%d after the redrive: state %s outcome %v attempts %d version %d (was %d)", r.ID, now.State, now.Outcome, now.Attempts, now.Version, r.Version)
		}
	}
	if now := got[recs[3].Consent.Recipient+"/MESAJ"]; now.State != consent.StateSynced || now.Version != recs[3].Version {
		t.Errorf("the synced record was touched: %+v", now)
	}
	rd, err := s.Redrives(ctx, c.ID)
	if err != nil || len(rd) != 2 || rd[1].Operator != "ayse" || rd[1].Requeued != 3 || len(rd[1].Filter.States) != 2 || rd[1].Filter.Since.IsZero() {
		t.Fatalf("redrives recorded: %+v %v (want the empty one, then the one of 3)", rd, err)
	}

	// Sent again in a new batch; the answer to the old send comes late.
	run2 := startRun(t, s, c.ID)
	b2, again := claim(t, s, c.ID, run2, 4)
	if len(again) != 3 {
		t.Fatalf("claimed %d records again, want 3", len(again))
	}
	late := []consent.Verdict{verdict(recs[0], consent.StateSynced, consent.OutcomeAccepted)}
	if _, err := s.FinishBatch(ctx, run, b1, 1, consent.BatchDone, late); !errors.Is(err, ErrBatchMoved) {
		t.Errorf("a late answer to the old batch: %v, want ErrBatchMoved", err)
	}
	// Even carried by the new batch, the old version's answer is not written.
	tally, err := s.FinishBatch(ctx, run2, b2, 3, consent.BatchDone, late)
	if err != nil || tally.Stale != 1 || tally.Accepted != 0 {
		t.Fatalf("the old version's answer: %+v %v, want it stale", tally, err)
	}
	if r := records(t, s, c.ID)[recs[0].Consent.Recipient+"/MESAJ"]; r.State != consent.StateInFlight || r.Version != recs[0].Version+1 {
		t.Errorf("after the late answer: %+v", r)
	}
}

// Uninstall is refused while a batch is in flight or a run holds the
// connector; it then hides the connector, keeps its records unless purged,
// and install brings it back with them.
func TestUninstallRefusedInFlightThenKeepsOrPurges(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	c := install(t, s, "B")
	importRows(t, s, c.ID, phones(t, 3)...)
	run := startRun(t, s, c.ID)
	claim(t, s, c.ID, run, 2)
	if _, err := s.UninstallConnector(ctx, "B", false); !errors.Is(err, ErrBatchesInFlight) {
		t.Fatalf("with a batch in flight: %v", err)
	}
	if _, _, err := s.RecoverBatches(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, locked, release, err := s.LockConnectors(ctx, []int64{c.ID})
	if err != nil || len(locked) != 1 {
		t.Fatal(locked, err)
	}
	if _, err := s.UninstallConnector(ctx, "B", false); !errors.Is(err, ErrConnectorRunning) {
		t.Errorf("while a run holds it: %v", err)
	}
	release()

	if _, err := s.UninstallConnector(ctx, "B", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Connector(ctx, "B"); !errors.Is(err, ErrNoConnector) {
		t.Errorf("an uninstalled connector is still found: %v", err)
	}
	if refs, err := s.SyncConnectors(ctx, nil); err != nil || len(refs) != 0 {
		t.Errorf("runs still serve it: %v %v", refs, err)
	}
	if _, err := s.ImportFile(ctx, c.ID, fixed(metaFor(phones(t, 1)...)), fromSlice(phones(t, 1)...), nil); !errors.Is(err, ErrNoConnector) {
		t.Errorf("an import into an uninstalled connector: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM consents`); n != 3 {
		t.Errorf("%d records kept, want 3", n)
	}
	if _, err := s.UninstallConnector(ctx, "B", false); !errors.Is(err, ErrNoConnector) {
		t.Errorf("uninstalled twice: %v", err)
	}

	back := install(t, s, "B")
	if back.ID != c.ID || back.State != ConnectorActive || len(records(t, s, c.ID)) != 3 {
		t.Fatalf("installed again: %+v", back)
	}
	// A refusal puts the recipient in the changes feed too.
	execSQL(t, s, `UPDATE consents SET state = 'rejected', outcome = 'invalid' WHERE id = (SELECT min(id) FROM consents)`)
	if n := count(t, s, `SELECT count(*) FROM changes WHERE connector_id = $1`, c.ID); n != 1 {
		t.Fatalf("%d changes before the purge, want the refusal", n)
	}
	// Its webhooks delivered it: the purge forgets that place too, since the
	// feed starts again at 1.
	turn, err := s.TakeWebhookTurn(ctx, c.ID, time.Now())
	if err != nil || turn == nil {
		t.Fatalf("webhook turn: %v %v", turn, err)
	}
	if err := turn.Delivered(ctx, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := s.UninstallConnector(ctx, "B", true)
	if err != nil || res.Purged != 3 || count(t, s, `SELECT count(*) FROM consents`) != 0 ||
		count(t, s, `SELECT count(*) FROM changes`) != 0 || count(t, s, `SELECT count(*) FROM webhook_cursors`) != 0 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	if n := count(t, s, `SELECT count(*) FROM runs`); n != 1 {
		t.Errorf("history: %d runs kept, want 1", n)
	}
}

// Pause and resume flip the state and say what it was; runs list newest
// first, per brand or all.
func TestPauseResumeAndRunHistory(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := install(t, s, "A"), install(t, s, "B")
	if was, err := s.SetConnectorState(ctx, "A", ConnectorPaused); err != nil || was != ConnectorActive {
		t.Fatalf("pause: %q %v", was, err)
	}
	if was, err := s.SetConnectorState(ctx, "A", ConnectorPaused); err != nil || was != ConnectorPaused {
		t.Fatalf("pause again: %q %v", was, err)
	}
	if refs, err := s.SyncConnectors(ctx, nil); err != nil || len(refs) != 2 || refs[0].Active || !refs[1].Active {
		t.Fatalf("sync connectors: %+v %v", refs, err)
	}
	if _, err := s.SetConnectorState(ctx, "A", ConnectorActive); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetConnectorState(ctx, "NONE", ConnectorPaused); !errors.Is(err, ErrNoConnector) {
		t.Errorf("an unknown brand: %v", err)
	}

	var ids []int64
	for _, id := range []int64{a.ID, b.ID, a.ID} {
		run := startRun(t, s, id)
		if err := s.FinishRun(ctx, run, consent.RunCompleted, ""); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run)
	}
	all, err := s.Runs(ctx, "", 10)
	if err != nil || len(all) != 3 || all[0].ID != ids[2] || all[2].ID != ids[0] || all[1].BrandCode != "B" {
		t.Fatalf("all runs: %+v %v", all, err)
	}
	onlyA, err := s.Runs(ctx, "A", 1)
	if err != nil || len(onlyA) != 1 || onlyA[0].ID != ids[2] || onlyA[0].BrandCode != "A" {
		t.Fatalf("A's last run: %+v %v", onlyA, err)
	}
	if _, err := s.Runs(ctx, "NONE", 1); !errors.Is(err, ErrNoConnector) {
		t.Errorf("runs of an unknown brand: %v", err)
	}
}
