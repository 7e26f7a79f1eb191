package upload

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkScan1M scans a generated SMS file of 1,000,000 lines per
// iteration and reports the cost per line.
func BenchmarkScan1M(b *testing.B) {
	const lines = 1_000_000
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	for range b.N {
		s := NewScanner(newGenReader(lines), "gen.txt", smsOpts())
		for s.Scan() {
			s.Line()
		}
		if s.Err() != nil || s.Counts().Lines != lines {
			b.Fatalf("err %v, counts %+v", s.Err(), s.Counts())
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	n := float64(b.N) * lines
	b.ReportMetric(float64(elapsed.Nanoseconds())/n, "ns/line")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/line")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "B/line")
}

// BenchmarkTracker1M observes 1,000,000 lines for distinct recipients.
func BenchmarkTracker1M(b *testing.B) {
	const lines = 1_000_000
	b.ReportAllocs()
	var all []Line
	s := NewScanner(newGenReader(lines), "gen.txt", smsOpts())
	for s.Scan() {
		if l, rej := s.Line(); rej == nil {
			all = append(all, l)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		tr := NewTracker()
		for _, l := range all {
			tr.Observe(l, "BIREYSEL", mesajArama)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*len(all)), "ns/line")
}
