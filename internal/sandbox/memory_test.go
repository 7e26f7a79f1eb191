package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
)

// The sandbox must hold many bulk requests: these submit them straight
// through the handler (no network) and measure the heap they leave.

// sink is a ResponseWriter that keeps only the status.
type sink struct {
	h      http.Header
	status int
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(b []byte) (int, error) { return len(b), nil }
func (s *sink) WriteHeader(code int)        { s.status = code }

// heapNow is the live heap and the heap in use (spans holding objects)
// after a collection.
func heapNow() (live, inuse int64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), int64(m.HeapInuse)
}

// bulkBody is a request of size SMS ONAYs: recipient n, n+1, ... of +905NNNNNNNNN.
func bulkBody(first, size int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range size {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"consentDate":"2025-05-14 10:00:00","source":"HS_WEB","recipient":"+905`)
		num := strconv.Itoa(first + i)
		b.WriteString("000000000"[len(num):])
		b.WriteString(num)
		b.WriteString(`","recipientType":"BIREYSEL","status":"ONAY","type":"MESAJ"}`)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// fill submits requests bulk requests of 1000 and returns the heap they
// hold, live and in use. With distinct, every consent is a new recipient (each becomes a
// record and a change); otherwise every request repeats the first's 1000
// recipients (refused H174: only the request results grow).
func fill(tb testing.TB, requests int, distinct bool) (live, inuse int64, sb *Sandbox) {
	c := &clock{t: start}
	sb, err := New(Options{Seed: 1, Now: c.Now})
	if err != nil {
		tb.Fatal(err)
	}
	h := sb.Handler()
	w := &sink{h: http.Header{}}
	login := httptest.NewRequest("POST", "/oauth2/token", bytes.NewReader([]byte(`{"username":"sandbox","password":"sandbox","grant_type":"password"}`)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, login)
	var tok tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
		tb.Fatalf("login: %v %s", err, rec.Body)
	}
	live0, inuse0 := heapNow()
	repeated := bulkBody(0, 1000)
	for i := range requests {
		body := repeated
		if distinct {
			body = bulkBody(i*1000, 1000)
		}
		r := httptest.NewRequest("POST", base+"/consents/request", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		w.status = 0
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			tb.Fatalf("request %d: status %d", i, w.status)
		}
	}
	live1, inuse1 := heapNow()
	runtime.KeepAlive(sb)
	return live1 - live0, inuse1 - inuse0, sb
}

// TestMemoryBound holds 100 bulk requests of 1000 new recipients (100,000
// records, changes and request results) within 200 bytes a consent. Kept
// small: the race detector makes it slow.
func TestMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the sandbox")
	}
	const requests = 100
	heap, _, sb := fill(t, requests, true)
	perConsent := float64(heap) / (requests * 1000)
	t.Logf("%d×1000 new consents: %.1f MB heap, %.0f B a consent", requests, float64(heap)/1e6, perConsent)
	if perConsent > 200 {
		t.Fatalf("%.0f B a consent, want at most 200", perConsent)
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if n := len(sb.st.order[0].recs); n != requests*1000 {
		t.Fatalf("%d records, want %d", n, requests*1000)
	}
	for _, req := range sb.st.requests {
		if req.pending != nil || len(req.codes) != 1000 {
			t.Fatal("a processed request keeps its consents")
		}
	}
}

// BenchmarkHoldBulkRequests submits 10,000 bulk requests of 1000 consents
// through the handler and reports the heap they leave:
//
//	go test -run '^$' -bench HoldBulkRequests -benchtime 1x ./internal/sandbox/
func BenchmarkHoldBulkRequests(b *testing.B) {
	const requests = 10_000
	for _, distinct := range []bool{true, false} {
		name := "repeated-recipients"
		if distinct {
			name = "new-recipients"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				live, inuse, _ := fill(b, requests, distinct)
				b.ReportMetric(float64(live)/1e6, "MB-live")
				b.ReportMetric(float64(inuse)/1e6, "MB-inuse")
				b.ReportMetric(float64(live)/(requests*1000), "B-live/consent")
			}
		})
	}
}
