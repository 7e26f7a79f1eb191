package upload

import (
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// testNow is a Tuesday, after the samples' dates (15–17 May 2025) by less
// than 3 business days: 19 May is a holiday, so 15 May's deadline is the 21st.
var testNow = consent.NewDate(time.Date(2025, time.May, 20, 12, 0, 0, 0, consent.Istanbul))

func emailOpts() Options { return Options{Channel: Email, Now: testNow} }
func smsOpts() Options   { return Options{Channel: SMS, Now: testNow} }

// scanResult is everything a Scanner gave for one input.
type scanResult struct {
	lines  []Line
	rejs   []*Rejection
	counts Counts
}

// scanAll scans content and checks what must hold for every input: exactly
// one of line and rejection per Scan, no error, and the counts identity.
func scanAll(t testing.TB, content string, opts Options) scanResult {
	t.Helper()
	s := NewScanner(strings.NewReader(content), "f.txt", opts)
	var res scanResult
	for s.Scan() {
		l, rej := s.Line()
		switch {
		case rej == nil && l.Number == 0:
			t.Fatalf("Scan returned true with neither a line nor a rejection")
		case rej != nil && l != (Line{}):
			t.Fatalf("Scan set both a line (%+v) and a rejection (%v)", l, rej)
		case rej != nil:
			res.rejs = append(res.rejs, rej)
		default:
			res.lines = append(res.lines, l)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	res.counts = s.Counts()
	checkIdentity(t, res.counts)
	if res.counts.Valid != len(res.lines) || res.counts.Rejected != len(res.rejs) {
		t.Fatalf("counts %+v disagree with %d lines and %d rejections", res.counts, len(res.lines), len(res.rejs))
	}
	return res
}

func checkIdentity(t testing.TB, c Counts) {
	t.Helper()
	if c.Lines != c.Blank+c.Valid+c.Rejected {
		t.Fatalf("counts %+v: lines != blank + valid + rejected", c)
	}
}

// one scans a single line and returns its line or rejection.
func one(t testing.TB, text string, opts Options) (Line, *Rejection) {
	t.Helper()
	res := scanAll(t, text, opts)
	if n := len(res.lines) + len(res.rejs); n != 1 {
		t.Fatalf("%q gave %d lines, want 1", text, n)
	}
	if len(res.rejs) == 1 {
		return Line{}, res.rejs[0]
	}
	return res.lines[0], nil
}

func istanbul(y int, m time.Month, d, h, mi, s int) consent.Date {
	return consent.NewDate(time.Date(y, m, d, h, mi, s, 0, consent.Istanbul))
}
