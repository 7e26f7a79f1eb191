package sync_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// 1,000 citizens opt out through İYS while 20,000 of our consents are being
// synced: every opt-out ends up in our records, and a second pull applies
// nothing.
func TestCitizensOptOutsDuringASyncAllComeBack(t *testing.T) {
	t.Parallel()
	const total, optOuts = 20000, 1000
	e := newEnv(t, sandbox.Options{Latency: 2 * time.Millisecond})
	c := e.install("OPTOUT")
	e.importRows(c, smsRows(0, total))
	puller := pull.New(e.st, e.newClient(), e.log)
	opts := e.fastOptions()
	opts.BatchSize = 250
	opts.Puller = puller
	eng := e.engine(opts, nil)

	// The opt-outs go in while the run goes on: some before their record is
	// sent, some while it is in flight, some after.
	var posted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < optOuts; i++ {
			err := e.sb.Admin.Call(http.MethodPost, sandboxtest.PathCitizen, sandboxtest.Change{IYSCode: c.IYSCode,
				BrandCode: c.BrandCode, Recipient: phone(i * (total / optOuts)), RecipientType: "BIREYSEL", Type: "MESAJ",
				Status: "RET", Source: "IYS_MOBIL"}, nil)
			if err != nil { // Call, not Citizen: this goroutine may not end the test
				t.Errorf("citizen change %d: %v", i, err)
				return
			}
			posted.Add(1)
		}
	}()
	sum := e.run(eng, engine.RunRequest{})
	<-done
	if posted.Load() != optOuts {
		t.Fatalf("posted %d opt-outs", posted.Load())
	}
	if cs := connSummary(t, sum, c.BrandCode); cs.Status == "failed" {
		t.Fatalf("run: %+v", cs)
	}
	// The next night's run pulls what came after this run's pull.
	sum = e.run(eng, engine.RunRequest{})
	if cs := connSummary(t, sum, c.BrandCode); cs.Status != "completed" || cs.Pending != 0 {
		t.Fatalf("second run: %+v", cs)
	}
	for i := 0; i < optOuts; i++ {
		p := phone(i * (total / optOuts))
		var status, outcome, source, state string
		if err := e.db.QueryRow(`SELECT status, coalesce(outcome, ''), source, state FROM consents
			WHERE connector_id = $1 AND recipient = $2 AND type = 'MESAJ'`, c.ID, p).Scan(&status, &outcome, &source, &state); err != nil {
			t.Fatal(err)
		}
		if status != "RET" || outcome != string(consent.OutcomeFromIYS) || source != "IYS_MOBIL" || state != "synced" {
			t.Fatalf("%s: %s %s %s %s, want the citizen's RET from İYS", p, status, outcome, source, state)
		}
	}
	if n := e.countSQL(`SELECT count(*) FROM consents WHERE connector_id = $1 AND status = 'RET'`, c.ID); n != optOuts {
		t.Fatalf("%d RETs in our records, want exactly the %d opt-outs", n, optOuts)
	}
	// İYS and we agree on every record.
	held := e.sb.Admin.Held(c.BrandCode)
	rows, err := e.db.Query(`SELECT recipient, status FROM consents WHERE connector_id = $1`, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var rec, st string
		if err := rows.Scan(&rec, &st); err != nil {
			t.Fatal(err)
		}
		if h, ok := held[rec+"/BIREYSEL/MESAJ"]; !ok || h.Status != st {
			t.Fatalf("%s: ours %s, İYS %+v", rec, st, h)
		}
		n++
	}
	if n != total {
		t.Fatalf("%d records, want %d", n, total)
	}
	res, err := puller.PullConnector(context.Background(), consent.ConnectorRef{ID: c.ID, BrandCode: c.BrandCode, IYSCode: c.IYSCode, Active: true})
	if err != nil || res.Applied != 0 || res.Changes != 0 {
		t.Fatalf("a third pull: %+v, %v: want nothing new", res, err)
	}
}
