// Command benchintake is the load generator of scripts/bench-intake.sh: it
// posts generated consents to a running intake in batches, from several
// clients at once, times each pass, checks every verdict and, with -db, that
// each consent is stored once and pending. It is not part of iys-sync.
//
//	BENCH_TOKEN=... benchintake -url http://127.0.0.1:8080 -brand B [-items 200000] [-batch 5000] [-clients 4] [-db URL]
//	BENCH_TOKEN=... benchintake -url http://127.0.0.1:8080 -brand B -max-posts 12 [-rounds 3]
//
// Pass 1 sends new consents (all must be accepted), pass 2 the same bodies
// again (all must be unchanged: the intake is idempotent), pass 3 the same
// records with a newer consent date (all accepted again, as updates).
//
// With -max-posts N it sends instead, -rounds times, N requests at once of
// the largest body the intake takes (10,000 items, just under 16 MiB): once
// valid items whose 255-character external ids are written as \u escapes
// (all stored), once items whose 1,550-character recipients are refused
// (all held in memory until the answer). A 503 (the intake busy) is sent
// again after its Retry-After, as a client does; any other answer but 200
// is an error.
package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/lib/pq"
)

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "benchintake:", err)
		os.Exit(1)
	}
}

func mainErr() error {
	base := flag.String("url", "", "base URL of the intake, e.g. http://127.0.0.1:8080")
	brand := flag.String("brand", "B", "brand code of an installed connector with MESAJ, ARAMA and EPOSTA")
	items := flag.Int("items", 200000, "consents a pass")
	batch := flag.Int("batch", 5000, "consents a request")
	clients := flag.Int("clients", 4, "requests in flight at once")
	dbURL := flag.String("db", "", "database to check the stored records in (optional)")
	maxPosts := flag.Int("max-posts", 0, "send this many largest bodies at once instead of the passes")
	rounds := flag.Int("rounds", 3, "with -max-posts: how many times")
	flag.Parse()
	token := os.Getenv("BENCH_TOKEN")
	if *base == "" || token == "" || *items < 1 || *batch < 1 || *clients < 1 {
		return errors.New("-url and BENCH_TOKEN are required; -items, -batch and -clients are positive")
	}
	endpoint := *base + "/v1/connectors/" + *brand + "/consents"
	if *maxPosts > 0 {
		return sendMax(endpoint, token, *maxPosts, *rounds)
	}
	// Bodies are built before the clock starts: the load generator is not measured.
	bodies := func(pass int) [][]byte {
		var out [][]byte
		for from := 0; from < *items; from += *batch {
			n := min(*batch, *items-from)
			its := make([]map[string]string, n)
			for i := range its {
				its[i] = item(from+i, pass)
			}
			b, _ := json.Marshal(its)
			out = append(out, b)
		}
		return out
	}
	total := 0.0
	fmt.Printf("load:      %d consents a pass, %d a request, %d clients\n", *items, *batch, *clients)
	for pass, want := range []string{"accepted", "unchanged", "accepted"} {
		bs := bodies(map[int]int{0: 0, 1: 0, 2: 1}[pass])
		secs, bytesSent, err := send(endpoint, token, bs, *clients, want)
		if err != nil {
			return fmt.Errorf("pass %d: %w", pass+1, err)
		}
		rate := float64(*items) / secs
		what := map[int]string{0: "new consents (inserted)", 1: "the same again (unchanged)", 2: "newer consents (updated)"}[pass]
		fmt.Printf("pass %d:    %-28s %8.3f s  %9.0f consents/s  (%.1f MB sent)\n", pass+1, what, secs, rate, float64(bytesSent)/1e6)
		if pass == 0 {
			total = rate
		}
	}
	if *dbURL != "" {
		db, err := sql.Open("postgres", *dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		var n, pending, v2 int
		err = db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE c.state = 'pending'), count(*) FILTER (WHERE c.version = 2)
			FROM consents c JOIN connectors k ON k.id = c.connector_id WHERE k.brand_code = $1`, *brand).Scan(&n, &pending, &v2)
		if err != nil {
			return err
		}
		if n != *items || pending != *items || v2 != *items {
			return fmt.Errorf("stored %d records, %d pending, %d at version 2: want %d of each", n, pending, v2, *items)
		}
		fmt.Printf("stored:    %d records, each once, pending, at version 2 after the update pass\n", n)
	}
	fmt.Printf("RESULT %.0f\n", total)
	return nil
}

// started fixes the consent dates of every pass.
var started = time.Now().Truncate(time.Second)

// item is the i-th consent: a quarter emails, the rest SMS as MESAJ or ARAMA,
// distinct records; pass 1 moves every consent date a day later.
func item(i, pass int) map[string]string {
	when := started.Add(-30*time.Hour + time.Duration(pass)*24*time.Hour - time.Duration(i%86400)*time.Second/2)
	it := map[string]string{
		"status":      []string{"ONAY", "RET"}[i%2],
		"platform":    []string{"web", "mobileapp", "SMS", "form"}[i%4],
		"externalId":  "user-" + strconv.Itoa(i),
		"consentDate": when.Format(time.RFC3339),
	}
	switch i % 4 {
	case 0:
		it["recipient"], it["channel"] = "user"+strconv.Itoa(i)+"@example.com", "email"
	case 1, 2:
		it["recipient"], it["type"] = fmt.Sprintf("90533%07d", i), "MESAJ"
	default:
		it["recipient"], it["type"] = fmt.Sprintf("90533%07d", i), "ARAMA"
	}
	return it
}

// send posts the bodies from clients goroutines and checks every verdict.
func send(endpoint, token string, bodies [][]byte, clients int, want string) (secs float64, sent int64, err error) {
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	next := make(chan []byte)
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				if err := post(client, endpoint, token, b, want); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for _, b := range bodies {
		select {
		case next <- b:
			sent += int64(len(b))
		case err := <-errc:
			close(next)
			wg.Wait()
			return 0, 0, err
		}
	}
	close(next)
	wg.Wait()
	secs = time.Since(start).Seconds()
	select {
	case err := <-errc:
		return 0, 0, err
	default:
	}
	return secs, sent, nil
}

func post(client *http.Client, endpoint, token string, body []byte, want string) error {
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
	}
	var r struct {
		Items []struct {
			Verdict string `json:"verdict"`
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	for i, it := range r.Items {
		if it.Verdict != want {
			return fmt.Errorf("item %d: %s %s %s, want %s", i, it.Verdict, it.Field, it.Message, want)
		}
	}
	return nil
}

// Limits of one request, as the intake's defaults.
const (
	maxItems = 10000
	maxBytes = 16 << 20
)

// maxBody is a body of maxItems items within maxBytes, padded with spaces
// up to it. valid: consents with 255-character external ids of Turkish
// letters written as \u escapes (6 bytes each, 2 once decoded); else items
// refused for their 1,550-character recipient, which are kept in memory as
// they are until the answer.
func maxBody(valid bool, round int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	ext := strings.Repeat(`\u015f`, 255)
	when := started.Add(-time.Hour + time.Duration(round)*time.Second).Format(time.RFC3339)
	for i := range maxItems {
		if i > 0 {
			b.WriteByte(',')
		}
		if valid {
			fmt.Fprintf(&b, `{"recipient":"90544%07d","type":"MESAJ","status":"ONAY","consentDate":%q,"platform":"web","externalId":"%s"}`,
				i, when, ext)
		} else {
			fmt.Fprintf(&b, `{"recipient":"%s","type":"MESAJ","status":"ONAY","consentDate":%q,"platform":"web"}`,
				strings.Repeat("9", 1550), when)
		}
	}
	pad := maxBytes - b.Len() - 1
	if pad < 0 {
		panic(fmt.Sprintf("the largest body is %d bytes over the limit", -pad))
	}
	b.WriteString(strings.Repeat(" ", pad))
	b.WriteByte(']')
	return b.Bytes()
}

// sendMax sends n largest bodies at once, rounds times each kind, and
// counts the answers.
func sendMax(endpoint, token string, n, rounds int) error {
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for _, valid := range []bool{true, false} {
		kind := map[bool]string{true: "valid items, escaped external ids", false: "refused items, long recipients"}[valid]
		for r := range rounds {
			body := maxBody(valid, r)
			var mu sync.Mutex
			answers := map[int]int{}
			var wg sync.WaitGroup
			var failed error
			start := time.Now()
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						status, wait, err := postMax(client, endpoint, token, body)
						mu.Lock()
						answers[status]++
						if err != nil && failed == nil {
							failed = err
						}
						mu.Unlock()
						if status != http.StatusServiceUnavailable || err != nil {
							return
						}
						time.Sleep(wait)
					}
				}()
			}
			wg.Wait()
			if failed != nil {
				return failed
			}
			fmt.Printf("max posts: %d at once of %.1f MiB (%s), round %d: %.2f s, answers %v\n",
				n, float64(len(body))/(1<<20), kind, r+1, time.Since(start).Seconds(), answers)
		}
	}
	return nil
}

// postMax sends one body; an answer other than 200 or 503 with Retry-After
// is an error. wait is a 503's Retry-After.
func postMax(client *http.Client, endpoint, token string, body []byte) (status int, wait time.Duration, err error) {
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, 0, nil
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && resp.StatusCode == http.StatusServiceUnavailable {
		return resp.StatusCode, time.Duration(secs) * time.Second, nil
	}
	return resp.StatusCode, 0, fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
}
