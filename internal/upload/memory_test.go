package upload

import (
	"io"
	"runtime"
	"strings"
	"testing"
)

var errEOF = io.EOF

// Scanning a long stream holds one line at a time: the live heap stays flat
// however far the scan goes. A Scanner that kept lines (or the file) would
// hold the whole 200,000-line stream, about 13 MB, and fail.
func TestScanHeapStaysBounded(t *testing.T) {
	const lines = 200_000
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse

	s := NewScanner(newGenReader(lines), "gen.txt", smsOpts())
	var peak uint64
	valid := 0
	for n := 0; s.Scan(); n++ {
		if l, _ := s.Line(); l.Number != 0 {
			valid++
		}
		if n%20_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	c := s.Counts()
	checkIdentity(t, c)
	if c.Lines != lines || c.Valid != valid || c.Blank == 0 || c.Rejected == 0 || c.OlderThan3BusinessDays == 0 || c.UnknownPlatform == 0 {
		t.Fatalf("counts %+v", c)
	}
	grew := int64(peak) - int64(base)
	t.Logf("live heap grew by at most %.2f MB over %d lines", float64(grew)/1e6, lines)
	if grew > 4<<20 {
		t.Fatalf("live heap grew by %d bytes while scanning: lines are kept", grew)
	}
	runtime.KeepAlive(s)
}

// A line of 64 MB without a line end is skipped, not read into memory: the
// whole scan allocates less than a megabyte.
func TestHugeLineIsNotHeld(t *testing.T) {
	const huge = 64 << 20
	valid := "905331234562; SMS; ONAY; 15.05.2025 14:23:00\n"
	r := io.MultiReader(strings.NewReader(valid), io.LimitReader(zeros{}, huge), strings.NewReader("\n"+valid))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := NewScanner(r, "huge.txt", smsOpts())
	var fields []string
	for s.Scan() {
		if _, rej := s.Line(); rej != nil {
			fields = append(fields, rej.Field)
		} else {
			fields = append(fields, "v")
		}
	}
	runtime.ReadMemStats(&after)
	if strings.Join(fields, ",") != "v,line,v" || s.Err() != nil {
		t.Fatalf("got %v, err %v", fields, s.Err())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte line", alloc, huge)
	}
}

// zeros reads as an endless run of the digit 0 (no line end).
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
