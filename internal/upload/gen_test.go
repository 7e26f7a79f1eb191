package upload

import (
	"strconv"
	"time"
)

// genReader produces an SMS upload file of n lines on the fly, without
// holding it: the memory tests and the benchmark read it like a file. Every
// 50th line is blank and every 100th rejected, so that all paths run; dates
// spread over ten days before testNow, so some lines are too old.
type genReader struct {
	n, i    int
	pending []byte
	buf     []byte
}

func newGenReader(n int) *genReader { return &genReader{n: n, buf: make([]byte, 0, 256)} }

func (g *genReader) Read(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		if len(g.pending) == 0 {
			if g.i == g.n {
				if total == 0 {
					return 0, errEOF
				}
				break
			}
			g.pending = g.line(g.i)
			g.i++
		}
		c := copy(p[total:], g.pending)
		g.pending = g.pending[c:]
		total += c
	}
	return total, nil
}

var platforms = []string{"SMS", "mobile/web", "form", "web", "kiosk"}

func (g *genReader) line(i int) []byte {
	b := g.buf[:0]
	switch {
	case i%50 == 49:
		return append(b, " \r\n"...)
	case i%100 == 98:
		return append(b, "905331234562; SMS; Onay; 15.05.2025 14:23:00\r\n"...)
	}
	b = strconv.AppendInt(append(b, "9053"...), int64(10000000+i%90000000), 10)
	b = append(b, "; "...)
	b = append(b, platforms[i%len(platforms)]...)
	if i%3 == 0 {
		b = append(b, "; RET; "...)
	} else {
		b = append(b, "; ONAY; "...)
	}
	b = append(b, genDates[i%len(genDates)]...)
	b = append(b, "; customer-"...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, '\n')
}

// genDates are the timestamps of the generated lines, one a minute over the
// ten days before testNow, formatted once so that the benchmark measures the
// scanner rather than time.Format.
var genDates = func() []string {
	out := make([]string, 10*24*60)
	for i := range out {
		out[i] = testNow.Time().Add(-time.Duration(i) * time.Minute).Format("02.01.2006 15:04:05")
	}
	return out
}()
