// Command benchpermissions is the load generator of
// scripts/bench-permissions.sh: it asks a running `iys-sync serve` for
// permissions, one recipient a request and in batches, checks every answer
// against the records the script loaded, and prints latency and throughput.
// It is not part of iys-sync.
//
// The records are the script's: recipient i (0 <= i < -records) is
// +905 and i in 9 digits, MESAJ, BIREYSEL; i%10 == 0 is a RET pulled from
// İYS, i%10 == 1 an ONAY still pending, the others ONAYs synced. Requests
// draw i at random from [0, 1.1 × records): about one in eleven is a
// recipient not held (NONE).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
)

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "benchpermissions:", err)
		os.Exit(1)
	}
}

// answer is the part of a Permission the check compares.
type answer struct {
	Recipient   string `json:"recipient"`
	Status      string `json:"status"`
	Allowed     bool   `json:"allowed"`
	SyncedToIYS bool   `json:"syncedToIys"`
}

// expected is recipient i's answer.
func expected(i, records int) answer {
	a := answer{Recipient: recipient(i)}
	switch {
	case i >= records:
		a.Status = "NONE"
	case i%10 == 0:
		a.Status, a.SyncedToIYS = "RET", true
	case i%10 == 1:
		a.Status = "ONAY"
	default:
		a.Status, a.Allowed, a.SyncedToIYS = "ONAY", true, true
	}
	return a
}

func recipient(i int) string { return fmt.Sprintf("+905%09d", i) }

// asked is recipient i as a request writes it: E.164 or digits, by turns.
func asked(i int) string {
	if i%2 == 0 {
		return recipient(i)
	}
	return recipient(i)[1:]
}

type config struct {
	base, token, brand                 string
	records, singles, singleClients    int
	batch, batches, batchClients, runs int
	warmSingles, warmBatches           int
	client                             *http.Client
	rng                                *rand.Rand
	rngMu                              sync.Mutex
	singleURL, batchURL                string
}

func mainErr() error {
	c := &config{}
	flag.StringVar(&c.base, "url", "", "base URL of the intake, e.g. http://127.0.0.1:8080")
	flag.StringVar(&c.brand, "brand", "B", "brand code of the connector the records were loaded for")
	flag.IntVar(&c.records, "records", 10000000, "records loaded")
	flag.IntVar(&c.runs, "runs", 5, "runs of the single and the batch measures")
	flag.IntVar(&c.singles, "singles", 20000, "single checks a run")
	flag.IntVar(&c.singleClients, "single-clients", 1, "single checks in flight at once")
	flag.IntVar(&c.batch, "batch", 10000, "recipients a batch check")
	flag.IntVar(&c.batches, "batches", 50, "batch checks a run")
	flag.IntVar(&c.batchClients, "batch-clients", 2, "batch checks in flight at once")
	flag.IntVar(&c.warmSingles, "warm-singles", 2000, "single checks before the runs, not measured")
	flag.IntVar(&c.warmBatches, "warm-batches", 4, "batch checks before the runs, not measured")
	flag.Parse()
	c.token = os.Getenv("BENCH_TOKEN")
	if c.base == "" || c.token == "" {
		return errors.New("-url and BENCH_TOKEN are required")
	}
	for _, n := range []int{c.records, c.runs, c.singles, c.singleClients, c.batch, c.batches, c.batchClients} {
		if n < 1 {
			return errors.New("-records, -runs, -singles, -single-clients, -batch, -batches and -batch-clients are positive")
		}
	}
	c.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: max(c.singleClients, c.batchClients)},
		Timeout: time.Minute}
	c.rng = rand.New(rand.NewPCG(1, 2))
	c.singleURL = c.base + "/v1/connectors/" + c.brand + "/permissions?type=MESAJ&recipient="
	c.batchURL = c.base + "/v1/connectors/" + c.brand + "/permissions"

	fmt.Printf("load:      %d records; a run: %d single checks (%d in flight), %d batches of %d (%d in flight); %d runs after a warm-up of %d singles and %d batches\n",
		c.records, c.singles, c.singleClients, c.batches, c.batch, c.batchClients, c.runs, c.warmSingles, c.warmBatches)
	if _, err := c.singlesRun(c.warmSingles); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := c.batchesRun(c.warmBatches); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var p50s, p99s, rates []float64
	for run := 1; run <= c.runs; run++ {
		lat, err := c.singlesRun(c.singles)
		if err != nil {
			return fmt.Errorf("run %d: %w", run, err)
		}
		rate, err := c.batchesRun(c.batches)
		if err != nil {
			return fmt.Errorf("run %d: %w", run, err)
		}
		p50, p99, worst := quantile(lat, 0.50), quantile(lat, 0.99), lat[len(lat)-1]
		fmt.Printf("run %d:     single p50 %.2f ms  p99 %.2f ms  max %.1f ms   batch %.0f recipients/s\n",
			run, ms(p50), ms(p99), ms(worst), rate)
		p50s, p99s, rates = append(p50s, ms(p50)), append(p99s, ms(p99)), append(rates, rate)
	}
	fmt.Printf("median:    single p50 %.2f ms  p99 %.2f ms   batch %.0f recipients/s  (of %d runs; p99 range %.2f–%.2f ms, batch %.0f–%.0f/s)\n",
		median(p50s), median(p99s), median(rates), c.runs, slices.Min(p99s), slices.Max(p99s), slices.Min(rates), slices.Max(rates))
	fmt.Printf("RESULT %.3f %.3f %.0f\n", median(p50s), median(p99s), median(rates))
	return nil
}

// draw picks a recipient index, a tenth of them past the records.
func (c *config) draw() int {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.IntN(c.records + c.records/10)
}

// singlesRun makes n single checks from singleClients goroutines and
// returns their latencies, sorted.
func (c *config) singlesRun(n int) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, c.singleClients)
	for range c.singleClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= n {
					return
				}
				i := c.draw()
				start := time.Now()
				body, err := c.do(http.MethodGet, c.singleURL+url.QueryEscape(asked(i)), nil)
				lat[k] = time.Since(start)
				if err == nil {
					err = check(body, []int{i}, c.records, false)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return lat, nil
}

// batchesRun makes n batch checks from batchClients goroutines and returns
// the recipients checked a second. The bodies are built before the clock starts.
func (c *config) batchesRun(n int) (float64, error) {
	type req struct {
		body []byte
		idx  []int
	}
	reqs := make([]req, n)
	for k := range reqs {
		idx := make([]int, c.batch)
		rs := make([]string, c.batch)
		for j := range idx {
			idx[j] = c.draw()
			rs[j] = asked(idx[j])
		}
		b, _ := json.Marshal(map[string]any{"type": "MESAJ", "recipients": rs})
		reqs[k] = req{b, idx}
	}
	work := make(chan req)
	errs := make(chan error, c.batchClients)
	var wg sync.WaitGroup
	start := time.Now()
	for range c.batchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				body, err := c.do(http.MethodPost, c.batchURL, r.body)
				if err == nil {
					err = check(body, r.idx, c.records, true)
				}
				if err != nil {
					errs <- err
					for range work { // drain: the feeder must not block
					}
					return
				}
			}
		}()
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()
	secs := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n*c.batch) / secs, nil
}

func (c *config) do(method, u string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if len(b) > 300 {
			b = b[:300]
		}
		return nil, fmt.Errorf("%s: status %d: %s", method, resp.StatusCode, b)
	}
	return b, nil
}

// check compares the answers with the records.
func check(body []byte, idx []int, records int, batch bool) error {
	var got []answer
	if batch {
		var r struct {
			Results []answer `json:"results"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return err
		}
		got = r.Results
	} else {
		var a answer
		if err := json.Unmarshal(body, &a); err != nil {
			return err
		}
		got = []answer{a}
	}
	if len(got) != len(idx) {
		return fmt.Errorf("%d answers for %d recipients", len(got), len(idx))
	}
	for k, i := range idx {
		if want := expected(i, records); got[k] != want {
			return fmt.Errorf("recipient %d: %+v, want %+v", i, got[k], want)
		}
	}
	return nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
