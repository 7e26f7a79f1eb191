package intake

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
	"github.com/iys-sync/iys-sync/internal/sync/iysadapter"
)

// ledger is what the clients posted: per record key, the newest consent
// (the highest generation; a generation is one second of consent date).
type ledger struct {
	mu     sync.Mutex
	gen    map[string]int
	status map[string]string
}

// next gives the key its next generation and a status for it.
// A nil rng gives ONAY.
func (l *ledger) next(key string, rng *rand.Rand) (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen[key]++
	st := "ONAY"
	if rng != nil {
		st = []string{"ONAY", "RET"}[rng.IntN(2)]
	}
	l.status[key] = st
	return l.gen[key], st
}

// TestIntakeDuringASync runs the intake at full speed against a running
// sync: clients post overlapping batches (newer consents of records in
// flight, and records no one has stored yet) while runs claim, send and
// record the same records, and pull İYS's feed. No run fails, no request
// gets a 500, PostgreSQL detects no deadlock, and in the end every record
// holds the newest consent posted, and İYS its status.
func TestIntakeDuringASync(t *testing.T) {
	const (
		stored    = 3000 // records posted before the sync starts
		fresh     = 600  // records first posted during the sync
		clients   = 4
		requests  = 40 // a client's
		batchSize = 300
	)
	ctx := context.Background()
	url := storedb.NewDB(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	sb := sandboxtest.Start(t, sandbox.Options{Username: "u", Password: "p", AsyncDelay: 5 * time.Millisecond,
		Latency: time.Millisecond})
	client := iysclienttest.New(t, sb.URL, iysclient.Credentials{Username: "u", Password: "p"})
	conn, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: "600001", IYSCode: "700001", FirstSyncAt: time.Now(),
		Channels: []consent.Type{consent.TypeMesaj, consent.TypeEposta}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, iysadapter.New(client), engine.Options{BatchSize: 250, Concurrency: 4,
		PollInitial: 5 * time.Millisecond, PollMax: 20 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Puller: pull.New(st, client, zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(st, []string{"crm:" + hashOf(tokCRM)}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	// Records: phones (MESAJ) and emails (EPOSTA). İYS already holds an ONAY
	// of each, older than anything posted, so that no RET is its first.
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	keys := make([]string, stored+fresh)
	item := func(i, gen int, status string) map[string]string {
		it := map[string]string{"status": status, "platform": "web",
			"consentDate": base.Add(time.Duration(gen) * time.Second).Format(time.RFC3339)}
		if i%2 == 0 {
			it["recipient"], it["type"] = fmt.Sprintf("90533%07d", i), "MESAJ"
		} else {
			it["recipient"], it["type"] = fmt.Sprintf("user%d%sexample.com", i, at), "EPOSTA"
		}
		return it
	}
	var seed []consent.Consent
	for i := range keys {
		it := item(i, 0, "ONAY")
		typ := consent.Type(it["type"])
		rcpt := it["recipient"]
		if typ == consent.TypeMesaj {
			rcpt = "+" + rcpt
		}
		keys[i] = rcpt + "/" + string(typ)
		seed = append(seed, consent.Consent{Recipient: rcpt, RecipientType: consent.Bireysel, Type: typ,
			Status: consent.StatusOnay, ConsentDate: consent.NewDate(base), Source: consent.SourceWeb})
	}
	for from := 0; from < len(seed); from += consent.MaxBulkSize {
		req, err := client.SubmitBulk(ctx, conn.IYSCode, conn.BrandCode, seed[from:min(from+consent.MaxBulkSize, len(seed))])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.WaitBulk(ctx, conn.IYSCode, conn.BrandCode, req.RequestID, 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}

	led := &ledger{gen: map[string]int{}, status: map[string]string{}}
	post := func(items []map[string]string) error {
		body, _ := json.Marshal(items)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/connectors/600001/consents", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokCRM)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return nil
	}
	// The records of the first part, pending before the sync starts.
	for from := 0; from < stored; from += 1000 {
		var items []map[string]string
		for i := from; i < min(from+1000, stored); i++ {
			gen, st := led.next(keys[i], nil)
			items = append(items, item(i, gen, st))
		}
		if err := post(items); err != nil {
			t.Fatal(err)
		}
	}

	// The sync: runs one after another until the clients are done.
	var runs []engine.Summary
	stop := make(chan struct{})
	runsDone := make(chan error, 1)
	go func() {
		for {
			sum, err := eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerRunNow})
			if err != nil {
				runsDone <- err
				return
			}
			runs = append(runs, sum)
			select {
			case <-stop:
				runsDone <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for range requests {
				var items []map[string]string
				for range batchSize {
					i := rng.IntN(stored)
					if rng.IntN(10) == 0 {
						i = stored + rng.IntN(fresh) // a record that may not be stored yet
					}
					gen, st := led.next(keys[i], rng)
					items = append(items, item(i, gen, st))
				}
				if err := post(items); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-runsDone; err != nil {
		t.Fatalf("a run could not start: %v", err)
	}
	close(errs)
	for err := range errs {
		t.Errorf("a client: %v", err)
	}
	// Then the sync finishes what the clients left.
	for range 20 {
		sum, err := eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerRunNow})
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, sum)
		if sum.Pending == 0 {
			break
		}
	}
	t.Logf("%d runs", len(runs))
	for _, sum := range runs {
		for _, c := range sum.Connectors {
			if c.Status == consent.RunFailed || c.Err != "" {
				t.Errorf("run %d %s: %s", c.RunID, c.Status, c.Err)
			}
		}
	}

	// Every record holds its newest consent, synced, and İYS its status.
	held := map[string]string{}
	for _, r := range sb.Admin.Consents("600001") {
		held[r.Recipient+"/"+r.Type] = r.Status
	}
	got := map[string]store.Record{}
	if err := st.ConsentsOf(ctx, conn.ID, store.Filter{}, func(r store.Record) error {
		got[r.Recipient+"/"+string(r.Type)] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, k := range keys {
		gen, ok := led.gen[k]
		if !ok {
			continue // a fresh record no client chose
		}
		r, ok := got[k]
		want := base.Add(time.Duration(gen) * time.Second)
		switch {
		case !ok:
			t.Errorf("%s: not stored", k)
		case string(r.Status) != led.status[k] || !r.ConsentDate.Time().Equal(want):
			t.Errorf("%s: stored %s %v, want the newest posted, %s %v", k, r.Status, r.ConsentDate, led.status[k], want)
		case r.State != consent.StateSynced && r.State != consent.StatePending:
			t.Errorf("%s: state %s (%v %v)", k, r.State, r.Outcome, r.IYSMessage)
		case r.State == consent.StateSynced && held[k] != led.status[k]:
			t.Errorf("%s: synced, but İYS holds %s, not %s", k, held[k], led.status[k])
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("and more")
		}
	}

	// Every record's history holds, writers racing or not: no chain forked
	// or lost a link, and each change has its event.
	v, err := st.VerifyChains(ctx, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Broken) > 0 || v.Records != len(got) {
		t.Errorf("verify: %d records walked, %d broken (first: %+v)", v.Records, len(v.Broken), v.Broken[:min(1, len(v.Broken))])
	}
	var unevented int
	if err := db.QueryRow(`SELECT count(*) FROM consents c WHERE c.version <> (SELECT count(*) FROM consent_events e
	                       WHERE e.consent_id = c.id AND e.kind = ANY($1) AND e.outcome IS DISTINCT FROM 'superseded')`,
		pq.Array(store.ValueKinds)).Scan(&unevented); err != nil {
		t.Fatal(err)
	}
	if unevented != 0 {
		t.Errorf("%d records whose versions and value events differ", unevented)
	}

	// The strongest witness: PostgreSQL counted no deadlock in this
	// database. A backend reports its counts when it ends: close the pool.
	st.Close()
	var deadlocks int
	if err := db.QueryRow("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&deadlocks); err != nil {
		t.Fatal(err)
	}
	if deadlocks != 0 {
		t.Errorf("PostgreSQL detected %d deadlocks", deadlocks)
	}
}
