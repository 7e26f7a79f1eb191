package sandbox

import (
	"strconv"
	"sync"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// stats counts what the sandbox saw, for GET /_sandbox/stats. It has its own
// lock, taken after Sandbox.mu when both are held.
type stats struct {
	mu           sync.Mutex
	requests     map[string]int64       // per İYS API endpoint (route pattern), every arrival
	throttled    map[consent.Code]int64 // 429s by code
	faults       map[int]int64          // injected 500s and 503s
	logins       int64
	refreshes    int64
	unauthorized int64
	forbidden    int64
	recorded     int64                  // consents recorded (single, bulk items, citizen changes)
	refused      map[consent.Code]int64 // consents refused by rule, single and bulk items
}

func newStats() *stats {
	return &stats{requests: map[string]int64{}, throttled: map[consent.Code]int64{},
		faults: map[int]int64{}, refused: map[consent.Code]int64{}}
}

func (s *stats) count(n *int64) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

func (s *stats) request(endpoint string) {
	s.mu.Lock()
	s.requests[endpoint]++
	s.mu.Unlock()
}

func (s *stats) throttle(code consent.Code) {
	s.mu.Lock()
	s.throttled[code]++
	s.mu.Unlock()
}

func (s *stats) fault(status int) {
	s.mu.Lock()
	s.faults[status]++
	s.mu.Unlock()
}

// verdict counts one consent's fate: recorded when code is "".
func (s *stats) verdict(code consent.Code) {
	s.mu.Lock()
	if code == "" {
		s.recorded++
	} else {
		s.refused[code]++
	}
	s.mu.Unlock()
}

func (s *stats) reset() {
	fresh := newStats()
	s.mu.Lock()
	s.requests, s.throttled, s.faults, s.refused = fresh.requests, fresh.throttled, fresh.faults, fresh.refused
	s.logins, s.refreshes, s.unauthorized, s.forbidden, s.recorded = 0, 0, 0, 0, 0
	s.mu.Unlock()
}

type statsJSON struct {
	Requests        map[string]int64       `json:"requests"`
	Throttled       int64                  `json:"throttled"`
	ThrottledByCode map[consent.Code]int64 `json:"throttledByCode"`
	Faults          int64                  `json:"faults"`
	FaultsByStatus  map[string]int64       `json:"faultsByStatus"`
	Tokens          struct {
		Logins    int64 `json:"logins"`
		Refreshes int64 `json:"refreshes"`
	} `json:"tokens"`
	Unauthorized int64                  `json:"unauthorized"`
	Forbidden    int64                  `json:"forbidden"`
	Recorded     int64                  `json:"recorded"`
	Refused      map[consent.Code]int64 `json:"refused"`
}

func (s *stats) snapshot() statsJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := statsJSON{Requests: map[string]int64{}, ThrottledByCode: map[consent.Code]int64{},
		FaultsByStatus: map[string]int64{}, Refused: map[consent.Code]int64{},
		Unauthorized: s.unauthorized, Forbidden: s.forbidden, Recorded: s.recorded}
	for k, v := range s.requests {
		out.Requests[k] = v
	}
	for k, v := range s.throttled {
		out.ThrottledByCode[k] = v
		out.Throttled += v
	}
	for k, v := range s.faults {
		out.FaultsByStatus[strconv.Itoa(k)] = v
		out.Faults += v
	}
	for k, v := range s.refused {
		out.Refused[k] = v
	}
	out.Tokens.Logins, out.Tokens.Refreshes = s.logins, s.refreshes
	return out
}
