package sandbox

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// faults draws the injected failures from the seed: with one client sending
// one request at a time, a seed replays the same faults.
type faults struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newFaults(seed int64) *faults {
	return &faults{rng: rand.New(rand.NewPCG(uint64(seed), 0xfa17))}
}

// draw returns 500 or 503 for a share rate of the calls, else 0.
func (f *faults) draw(rate float64) int {
	if rate <= 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= rate {
		return 0
	}
	if f.rng.IntN(2) == 0 {
		return http.StatusInternalServerError
	}
	return http.StatusServiceUnavailable
}

// throttleCode picks one of İYS's two rate-limit codes, so that clients
// must know both.
func (f *faults) throttleCode() consent.Code {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.IntN(2) == 0 {
		return consent.CodeRateLimited
	}
	return consent.CodeRateLimited2
}

// latency delays the answer; a client that gives up ends the wait.
func (s *Sandbox) latency(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.Latency <= 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(s.opts.Latency)
		defer t.Stop()
		select {
		case <-t.C:
			h(w, r)
		case <-r.Context().Done():
		}
	}
}

// failing answers a share of the calls with 500 or 503 before reading
// anything, so that such a call has no effect. The 503 comes as a gateway
// would send it, in HTML: clients must not expect JSON on every error.
func (s *Sandbox) failing(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.FailRate <= 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		switch code := s.faults.draw(s.opts.FailRate); code {
		case 0:
			h(w, r)
		case http.StatusServiceUnavailable:
			s.stats.fault(code)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(code)
			_, _ = w.Write([]byte("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>\n"))
		default:
			s.stats.fault(code)
			writeErrors(w, code, apiError{Message: "internal server error (injected by the sandbox)"})
		}
	}
}

// bucket is a token bucket on the sandbox's clock: rate per second, a burst
// of one second's worth (at least one request).
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func (b *bucket) burst() float64 { return math.Max(1, b.rate) }

// take spends a token, or says how long until one is there.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens, b.last = b.burst(), now
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(b.burst(), b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

func (b *bucket) reset() {
	b.mu.Lock()
	b.last = time.Time{}
	b.mu.Unlock()
}

// bulkRate answers 429 (H083 or H124) with a Retry-After beyond the bulk
// rate. Only requests İYS would take (authenticated, permitted) count.
func (s *Sandbox) bulkRate(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.BulkRate <= 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.bulk.take(s.opts.Now()); !ok {
			s.throttle(w, s.faults.throttleCode(), wait)
			return
		}
		h(w, r)
	}
}

// throttle answers 429 with a code and a Retry-After in whole seconds.
func (s *Sandbox) throttle(w http.ResponseWriter, code consent.Code, wait time.Duration) {
	s.stats.throttle(code)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(math.Max(1, wait.Seconds())))))
	writeErrors(w, http.StatusTooManyRequests, codeError(code))
}
