package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// 1,000 citizens opt out through İYS while 20,000 of our consents are being
// synced: every opt-out ends up in our records, and a second pull applies
// nothing.
func TestCitizensOptOutsDuringASyncAllComeBack(t *testing.T) {
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
			b, _ := json.Marshal(map[string]string{"iysCode": c.IYSCode, "brandCode": c.BrandCode,
				"recipient": phone(i * (total / optOuts)), "recipientType": "BIREYSEL", "type": "MESAJ",
				"status": "RET", "source": "IYS_MOBIL"})
			resp, err := http.Post(e.srv.URL+"/_sandbox/citizen", "application/json", bytes.NewReader(b))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Errorf("citizen change %d: %s", i, resp.Status)
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
	held := e.sandboxConsents(c.BrandCode)
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
