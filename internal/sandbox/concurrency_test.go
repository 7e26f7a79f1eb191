package sandbox

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestConcurrentClients runs every kind of call at once, for the race
// detector, and checks that each bulk item is judged exactly once.
func TestConcurrentClients(t *testing.T) {
	e := newEnv(t, Options{AsyncDelay: time.Second, BulkRate: 1000})
	const workers, rounds = 6, 8
	var wg sync.WaitGroup
	ids := make(chan string, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				n := (w*rounds + i) * 10
				items := make([]wc, 10)
				for j := range items {
					items[j] = onay(phone(n+j), start)
				}
				r := e.call("POST", base+"/consents/request", items)
				if r.status != http.StatusOK {
					t.Errorf("submit: %d %s", r.status, r.body)
					return
				}
				var sub bulkReply
				if err := json.Unmarshal(r.body, &sub); err != nil {
					t.Errorf("submit answer: %v", err)
					return
				}
				ids <- sub.RequestID
				e.add(onay(phone(100000+n), start))
				e.call("GET", base+"/consents/changes?source=HS&limit=5", nil)
				e.send("POST", "/_sandbox/citizen", "", map[string]string{"iysCode": iysCode, "brandCode": brandCode,
					"recipient": phone(200000 + n), "recipientType": "BIREYSEL", "type": "MESAJ", "status": "RET", "source": "IYS_WEB"})
				e.send("GET", "/_sandbox/stats", "", nil)
				e.clock.Add(200 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(ids)
	e.clock.Add(time.Second)
	for id := range ids {
		for _, r := range e.poll(id) {
			if r.Status != "success" {
				t.Fatalf("item %+v, want success", r)
			}
		}
	}
	if st := e.stats(); st.Recorded != workers*rounds*(10+1+1) {
		t.Fatalf("recorded %d, want %d", st.Recorded, workers*rounds*12)
	}
}
