package upload

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// lineShape is what a file gave, line by line: "v" valid, or the rejected field.
func shape(res scanResult) []string {
	var out []string
	li, ri := 0, 0
	for li < len(res.lines) || ri < len(res.rejs) {
		if ri == len(res.rejs) || (li < len(res.lines) && res.lines[li].Number < res.rejs[ri].Line) {
			out = append(out, "v")
			li++
		} else {
			out = append(out, res.rejs[ri].Field)
			ri++
		}
	}
	return out
}

func TestFileStructure(t *testing.T) {
	const a = "user@example.com; web; ONAY; 15.05.2025 14:23:00; a"
	const b = "user2@example.com; web; RET; 15.05.2025 14:24:00"
	tests := []struct {
		name    string
		content string
		counts  Counts
		shape   []string
		numbers []int // line numbers of the non-blank lines
	}{
		{"empty file", "", Counts{}, nil, nil},
		{"only a line end", "\n", Counts{Lines: 1, Blank: 1}, nil, nil},
		{"only a BOM", "\xEF\xBB\xBF", Counts{}, nil, nil},
		{"BOM and a line end", "\xEF\xBB\xBF\r\n", Counts{Lines: 1, Blank: 1}, nil, nil},
		{"one line, no line end", a, Counts{Lines: 1, Valid: 1}, []string{"v"}, []int{1}},
		{"one line and a line end", a + "\n", Counts{Lines: 1, Valid: 1}, []string{"v"}, []int{1}},
		{"a line end after the last line starts no line, two do", a + "\n\n", Counts{Lines: 2, Valid: 1, Blank: 1}, []string{"v"}, []int{1}},
		{"CRLF", a + "\r\n" + b + "\r\n", Counts{Lines: 2, Valid: 2}, []string{"v", "v"}, []int{1, 2}},
		{"mixed LF and CRLF", a + "\n" + b + "\r\n" + a, Counts{Lines: 3, Valid: 3}, []string{"v", "v", "v"}, []int{1, 2, 3}},
		{"BOM at the very start", "\xEF\xBB\xBF" + a + "\n", Counts{Lines: 1, Valid: 1}, []string{"v"}, []int{1}},
		{"BOM on line 2 is content", a + "\n\xEF\xBB\xBF" + b, Counts{Lines: 2, Valid: 1, Rejected: 1}, []string{"v", "email"}, []int{1, 2}},
		{"blank lines are counted and numbered", "\n" + a + "\n   \n\t\n \t \r\n" + b + "\n\n",
			Counts{Lines: 7, Blank: 5, Valid: 2}, []string{"v", "v"}, []int{2, 6}},
		{"Unicode white space only is blank", a + "\n\u00a0\u3000\u2003\n" + b, Counts{Lines: 3, Blank: 1, Valid: 2}, []string{"v", "v"}, []int{1, 3}},
		{"a lone CR inside a line is content", a + "\r" + b, Counts{Lines: 1, Rejected: 1}, []string{"line"}, []int{1}},
		{"a lone CR at the end of the file is content", a + "\n" + b + "\r", Counts{Lines: 2, Valid: 1, Rejected: 1}, []string{"v", "timestamp"}, []int{1, 2}},
		{"a lone CR line is blank", a + "\n\r", Counts{Lines: 2, Valid: 1, Blank: 1}, []string{"v"}, []int{1}},
		{"numbers of rejected lines count blank lines", "\n\n" + a + "\n\nx;y\n", Counts{Lines: 5, Blank: 3, Valid: 1, Rejected: 1}, []string{"v", "line"}, []int{3, 5}},
		{"invalid UTF-8 line is not blank", a + "\n\xff \n", Counts{Lines: 2, Valid: 1, Rejected: 1}, []string{"v", "line"}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scanAll(t, tt.content, emailOpts())
			if res.counts != tt.counts {
				t.Errorf("counts %+v, want %+v", res.counts, tt.counts)
			}
			if got := shape(res); strings.Join(got, ",") != strings.Join(tt.shape, ",") {
				t.Errorf("shape %v, want %v", got, tt.shape)
			}
			var numbers []int
			for _, l := range res.lines {
				numbers = append(numbers, l.Number)
			}
			for _, r := range res.rejs {
				numbers = append(numbers, r.Line)
			}
			if len(numbers) != len(tt.numbers) {
				t.Fatalf("numbers %v, want %v", numbers, tt.numbers)
			}
			for _, n := range tt.numbers {
				found := false
				for _, m := range numbers {
					found = found || m == n
				}
				if !found {
					t.Errorf("numbers %v, want %v", numbers, tt.numbers)
				}
			}
			for _, l := range res.lines {
				if strings.ContainsAny(l.ExternalID, "\r\n") || strings.HasPrefix(l.Recipient, "\uFEFF") {
					t.Errorf("line end or BOM kept in %+v", l)
				}
			}
		})
	}
}

func TestHeaderRow(t *testing.T) {
	const valid = "user@example.com; web; ONAY; 15.05.2025 14:23:00\n"
	const header = "email; platform; permission; timestamp; externalId\n"
	tests := []struct {
		name    string
		content string
		line    int
		field   string
		header  bool
	}{
		{"header on line 1", header + valid, 1, FieldLine, true},
		{"header after a BOM", "\xEF\xBB\xBF" + header + valid, 1, FieldLine, true},
		{"header with a wrong field count", "address;platform;permission\n" + valid, 1, FieldLine, true},
		{"one word", "consents\n" + valid, 1, FieldLine, true},
		{"header after leading blank lines (first non-blank line)", "\n \n" + header + valid, 3, FieldLine, true},
		{"same text on line 5 is an ordinary bad line", strings.Repeat(valid, 4) + header, 5, FieldEmail, false},
		{"same text after a rejected first line", "x;1\n" + header, 2, FieldEmail, false},
		{"a rejected first line with a digit is no header", "user@example; web; ONAY; 15.05.2025 14:23:00\n" + valid, 1, FieldEmail, false},
		{"Turkish header", "E-posta;Kaynak;İzin;Tarih;Müşteri No\n" + valid, 1, FieldLine, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scanAll(t, tt.content, emailOpts())
			var rej *Rejection
			for _, r := range res.rejs {
				if r.Line == tt.line {
					rej = r
				}
			}
			if rej == nil {
				t.Fatalf("no rejection on line %d (counts %+v)", tt.line, res.counts)
			}
			if rej.Line != tt.line || rej.Field != tt.field {
				t.Fatalf("rejection %q, want line %d field %s", rej.Error(), tt.line, tt.field)
			}
			if isHeader := strings.Contains(rej.Message, "header rows are not allowed"); isHeader != tt.header {
				t.Fatalf("message %q: header = %v, want %v", rej.Message, isHeader, tt.header)
			}
			if strings.Contains(rej.Message, "platform; permission; timestamp; externalId") {
				t.Errorf("message %q echoes the line", rej.Message)
			}
		})
	}
}

func TestLongLines(t *testing.T) {
	// A valid line of exactly MaxLineBytes, made long by an unknown platform.
	prefix, suffix := "user@example.com; ", "; ONAY; 15.05.2025 14:23:00"
	exact := prefix + strings.Repeat("p", MaxLineBytes-len(prefix)-len(suffix)) + suffix
	if len(exact) != MaxLineBytes {
		t.Fatal("bad test line")
	}
	over := prefix + "p" + exact[len(prefix):]
	huge := strings.Repeat("x", 3*MaxLineBytes+17)
	const valid = "user@example.com; web; ONAY; 15.05.2025 14:23:00"
	tests := []struct {
		name    string
		content string
		shape   string
	}{
		{"exactly the limit, LF", valid + "\n" + exact + "\n" + valid, "v,v,v"},
		{"exactly the limit, CRLF", valid + "\r\n" + exact + "\r\n" + valid, "v,v,v"},
		{"exactly the limit after a BOM", "\xEF\xBB\xBF" + exact + "\r\n" + valid, "v,v"},
		{"exactly the limit at the end", valid + "\n" + exact, "v,v"},
		{"one byte over, LF", valid + "\n" + over + "\n" + valid, "v,line,v"},
		{"one byte over, CRLF", valid + "\n" + over + "\r\n" + valid, "v,line,v"},
		{"one byte over at the end", valid + "\n" + over, "v,line"},
		{"several buffers long", valid + "\n" + huge + "\n" + valid + "\n", "v,line,v"},
		{"several buffers long at the end", valid + "\n" + huge, "v,line"},
		{"several buffers long, first line, no digit: a header", huge + "\n" + valid, "line,v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scanAll(t, tt.content, emailOpts())
			if got := strings.Join(shape(res), ","); got != tt.shape {
				t.Fatalf("shape %s, want %s", got, tt.shape)
			}
			for _, r := range res.rejs {
				if !strings.Contains(r.Message, "longer than 65536 bytes") && !strings.Contains(r.Message, "header") {
					t.Errorf("message %q does not give the limit", r.Message)
				}
				if len(r.Message) > 300 {
					t.Errorf("message of %d bytes echoes the line", len(r.Message))
				}
			}
			if n := len(res.lines) + len(res.rejs); res.counts.Lines != n {
				t.Errorf("counts %+v for %d lines", res.counts, n)
			}
		})
	}
	// The header rule looks at the whole of a long first line: a digit in its
	// first buffer makes it no header, one in its last buffer too.
	for _, first := range []string{"1" + huge, huge + "1"} {
		res := scanAll(t, first+"\n"+valid, emailOpts())
		if len(res.rejs) != 1 || !strings.Contains(res.rejs[0].Message, "longer than") {
			t.Fatalf("long first line with a digit: %v, want a too-long line, not a header", res.rejs)
		}
	}
	res := scanAll(t, huge+"\n"+valid, emailOpts())
	if len(res.rejs) != 1 || !strings.Contains(res.rejs[0].Message, "header") {
		t.Fatalf("long first line without a digit: %v, want a header", res.rejs)
	}

	// The numbering goes on after a long line.
	res = scanAll(t, valid+"\n"+huge+"\n\n"+valid, emailOpts())
	if res.rejs[0].Line != 2 || res.lines[1].Number != 4 {
		t.Fatalf("numbers: rejection on %d, line %d; want 2 and 4", res.rejs[0].Line, res.lines[1].Number)
	}
}

// failingReader gives data, then an error.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	s := NewScanner(&failingReader{data: "user@example.com; web; ONAY; 15.05.2025 14:23:00\nuser2@exa", err: boom}, "in/a.txt", emailOpts())
	n := 0
	for s.Scan() {
		n++
	}
	if n != 1 {
		t.Errorf("%d lines before the error, want 1", n)
	}
	err := s.Err()
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "in/a.txt at line 2") {
		t.Fatalf("Err() = %v, want the read error with the path and the line being read", err)
	}
	if s.Scan() {
		t.Fatal("Scan after an error returned true")
	}
	if c := s.Counts(); c.Lines != 1 {
		t.Errorf("counts %+v, want the one complete line", c)
	}
}

func TestInvalidOptionsStopTheScanner(t *testing.T) {
	s := NewScanner(strings.NewReader(okEmail), "a.txt", Options{Channel: Email, Types: []consent.Type{consent.TypeMesaj}})
	if s.Scan() {
		t.Fatal("Scan returned true with invalid options")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "--type is refused for email files") {
		t.Fatalf("Err() = %v", err)
	}
}

func TestRejectionFormat(t *testing.T) {
	res := scanAll(t, okEmail+"\n\nuser@example.com; web; Onay; 15.05.2025 14:23:00\n", emailOpts())
	rej := res.rejs[0]
	const want = "f.txt:3: permission: must be ONAY or RET, in capitals"
	if rej.Error() != want {
		t.Fatalf("Error() = %q, want %q", rej.Error(), want)
	}
	b, err := json.Marshal(rej)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"line":3,"field":"permission","message":"must be ONAY or RET, in capitals"}` {
		t.Fatalf("JSON %s", b)
	}
}

func TestLineIsEmptyBeforeScanAndAfterEnd(t *testing.T) {
	s := NewScanner(strings.NewReader(okEmail), "a.txt", emailOpts())
	if l, r := s.Line(); l != (Line{}) || r != nil {
		t.Fatal("Line before Scan is set")
	}
	for s.Scan() {
	}
	if l, r := s.Line(); l != (Line{}) || r != nil {
		t.Fatal("Line after the end is set")
	}
}

// oneByteReader hands the file over one byte at a time, as a slow network
// might: lines must come out the same.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestSlowReader(t *testing.T) {
	content := "\xEF\xBB\xBF" + okEmail + "\r\n\r\nx;y\n" + okEmail
	s := NewScanner(oneByteReader{strings.NewReader(content)}, "a.txt", emailOpts())
	var got []string
	for s.Scan() {
		if _, r := s.Line(); r != nil {
			got = append(got, r.Field)
		} else {
			got = append(got, "v")
		}
	}
	if strings.Join(got, ",") != "v,line,v" || s.Counts() != (Counts{Lines: 4, Blank: 1, Valid: 2, Rejected: 1}) {
		t.Fatalf("got %v, counts %+v", got, s.Counts())
	}
}

// canceledAfter reads as an endless line of zeros until n bytes were given,
// then fails as a reader whose context ended does.
type canceledAfter struct{ n int }

func (r *canceledAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, context.Canceled
	}
	p = p[:min(len(p), r.n)]
	for i := range p {
		p[i] = 0
	}
	r.n -= len(p)
	return len(p), nil
}

// A file that is one endless line (/dev/zero) is read chunk by chunk,
// never held; when its reader stops, the error names the line being read.
func TestEndlessLineStopsWithTheReader(t *testing.T) {
	s := NewScanner(io.MultiReader(strings.NewReader(okSMS+"\n\n"), &canceledAfter{n: 16 * MaxLineBytes}), "zero.txt", smsOpts())
	n := 0
	for s.Scan() {
		n++
	}
	err := s.Err()
	if n != 1 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "zero.txt at line 3") {
		t.Fatalf("%d lines, Err() = %v; want 1 line, then the reader's error at line 3", n, err)
	}
}
