package upload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// MaxLineBytes is the longest line the Scanner reads, line end excluded. A
// longer line is rejected (field line) and skipped without being held.
const MaxLineBytes = 64 << 10

// room for a BOM and \r\n on top of the longest line, so that any line over
// MaxLineBytes is caught by one length check or by a full buffer.
const bufSize = MaxLineBytes + 8

var bom = []byte("\xEF\xBB\xBF")

// Counts are a file's line counts; Lines = Blank + Valid + Rejected always.
// UnknownPlatform, OlderThan3BusinessDays and MaybeMissingCountryCode count
// valid lines only.
type Counts struct {
	Lines                   int `json:"lines"`
	Blank                   int `json:"blank"`
	Valid                   int `json:"valid"`
	Rejected                int `json:"rejected"`
	UnknownPlatform         int `json:"unknownPlatform"`
	OlderThan3BusinessDays  int `json:"olderThan3BusinessDays"`
	MaybeMissingCountryCode int `json:"maybeMissingCountryCode"`
}

// Scanner reads one upload file line by line in constant memory. Use it like
// bufio.Scanner:
//
//	for s.Scan() {
//		line, rej := s.Line()
//		...
//	}
//	if err := s.Err(); err != nil { ... the file is refused whole ... }
type Scanner struct {
	r     *bufio.Reader
	path  string
	check checker
	err   error
	eof   bool

	number      int  // of the last line read
	seenContent bool // a non-blank line was read: the header rule is over
	counts      Counts

	line Line
	rej  *Rejection
}

// NewScanner reads r, an upload file named path (path is used in rejections
// and errors only). Invalid options make the first Scan return false with
// the reason in Err.
func NewScanner(r io.Reader, path string, opts Options) *Scanner {
	s := &Scanner{r: bufio.NewReaderSize(r, bufSize), path: path}
	if err := opts.Validate(); err != nil {
		s.err = fmt.Errorf("%s: %w", path, err)
		return s
	}
	if opts.Now.IsZero() {
		opts.Now = consent.Now()
	}
	s.check = newChecker(opts)
	return s
}

// Scan moves to the next non-blank line, valid or rejected, counting blank
// lines on the way. It returns false at the end of the file or on an error.
func (s *Scanner) Scan() bool {
	s.line, s.rej = Line{}, nil
	for s.err == nil && !s.eof {
		b, tooLong, longHasDigit, ok := s.readLine()
		if !ok {
			return false
		}
		s.number++
		s.counts.Lines++
		if !tooLong && isBlank(b) {
			s.counts.Blank++
			continue
		}
		s.take(b, tooLong, longHasDigit)
		return true
	}
	return false
}

// take checks a non-blank line and counts it. For a line over the limit, b
// is empty and longHasDigit tells whether it had a digit.
func (s *Scanner) take(b []byte, tooLong, longHasDigit bool) {
	first := !s.seenContent
	s.seenContent = true
	var rej rejection
	if tooLong {
		rej = rejection{FieldLine, fmt.Sprintf("is longer than %d bytes: want one consent a line", MaxLineBytes)}
	} else {
		s.line, rej = s.check.line(b)
	}
	if rej.field == "" {
		s.line.Number = s.number
		s.counts.Valid++
		if s.line.UnknownPlatform {
			s.counts.UnknownPlatform++
		}
		if s.line.TooOld {
			s.counts.OlderThan3BusinessDays++
		}
		if s.line.MaybeMissingCountryCode {
			s.counts.MaybeMissingCountryCode++
		}
		return
	}
	if first && !longHasDigit && !containsDigit(b) {
		rej = rejection{FieldLine, "header rows are not allowed: the first line has no digit, so it is taken for a header; " +
			"start with the first consent (address; platform; permission; timestamp; optional external id)"}
	}
	s.line = Line{}
	s.rej = &Rejection{Path: s.path, Line: s.number, Field: rej.field, Message: rej.message}
	s.counts.Rejected++
}

// readLine returns the next line without its line end (and, on line 1,
// without a BOM). A line over MaxLineBytes is skipped chunk by chunk and
// returned empty with tooLong set; hasDigit then tells whether it had an
// ASCII digit, for the header rule. ok is false at the end or on an error.
func (s *Scanner) readLine() (b []byte, tooLong, hasDigit, ok bool) {
	b, err := s.r.ReadSlice('\n')
	if s.number == 0 {
		b = bytes.TrimPrefix(b, bom) // before the end-of-file test: a file of a BOM alone has no line
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		hasDigit = hasDigit || containsDigit(b)
		b, err = s.r.ReadSlice('\n')
	}
	switch {
	case err == io.EOF:
		s.eof = true
		if len(b) == 0 && !tooLong {
			return nil, false, false, false // a line end after the last line starts no line
		}
	case err != nil:
		// The line being read is named: a file of one endless line
		// (/dev/zero) stops here only when the reader fails or is canceled.
		s.err = fmt.Errorf("read %s at line %d: %w", s.path, s.number+1, err)
		return nil, false, false, false
	}
	if tooLong {
		return nil, true, hasDigit || containsDigit(b), true
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	if len(b) > MaxLineBytes {
		return nil, true, containsDigit(b), true
	}
	return b, false, false, true
}

// Line returns the line Scan moved to: the valid line, or its rejection.
// Exactly one is set after Scan returned true.
func (s *Scanner) Line() (Line, *Rejection) { return s.line, s.rej }

// Err returns the error that stopped Scan early: an I/O error or invalid
// options, with the path. It is nil at a normal end of file.
func (s *Scanner) Err() error { return s.err }

// Counts returns the counts of the lines read so far.
func (s *Scanner) Counts() Counts { return s.counts }

func containsDigit(b []byte) bool {
	for _, c := range b {
		if '0' <= c && c <= '9' {
			return true
		}
	}
	return false
}
