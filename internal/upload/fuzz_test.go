package upload

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func FuzzScanner(f *testing.F) {
	for _, name := range []string{"email-sample.txt", "sms-sample.txt"} {
		b, err := os.ReadFile(filepath.Join(samplesDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, name == "sms-sample.txt")
	}
	for _, r := range rules() {
		f.Add([]byte(r.line), r.sms)
	}
	f.Add([]byte("\xEF\xBB\xBFemail;platform;permission;timestamp\r\n\r\n"+okEmail+"\r"), false)
	f.Add([]byte("905331234562; hs_2015; ONAY; 01.05.2015 00:00:00;\n\n\t\n905331234562;IYS_X;RET;1.1.2020"), true)
	f.Fuzz(func(t *testing.T, data []byte, sms bool) {
		opts := emailOpts()
		if sms {
			opts = smsOpts()
		}
		s := NewScanner(bytes.NewReader(data), "fuzz.txt", opts)
		last := 0
		var valid []Line
		for s.Scan() {
			l, rej := s.Line()
			if (rej == nil) == (l == Line{}) {
				t.Fatalf("line %+v and rejection %v: want exactly one", l, rej)
			}
			n := l.Number
			if rej != nil {
				n = rej.Line
				checkRejection(t, rej, sms)
			} else {
				checkValidLine(t, l, sms)
				valid = append(valid, l)
			}
			if n <= last {
				t.Fatalf("line number %d after %d", n, last)
			}
			last = n
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		c := s.Counts()
		checkIdentity(t, c)
		if want := referenceLineCount(data); c.Lines != want {
			t.Fatalf("counts %+v, want %d lines", c, want)
		}
		if last > c.Lines {
			t.Fatalf("line number %d beyond %d lines", last, c.Lines)
		}
		// Valid lines written back in the format read as the same lines.
		var back strings.Builder
		for _, l := range valid {
			back.WriteString(format(l, sms) + "\n")
		}
		again := scanAll(t, back.String(), opts)
		if len(again.rejs) > 0 || len(again.lines) != len(valid) {
			t.Fatalf("valid lines written back: %d valid, rejections %v", len(again.lines), again.rejs)
		}
		for i, l := range valid {
			a := again.lines[i]
			if a.Recipient != l.Recipient || a.Status != l.Status || !a.ConsentDate.Equal(l.ConsentDate) ||
				a.Source != l.Source || a.ExternalID != l.ExternalID || a.TooOld != l.TooOld ||
				a.MaybeMissingCountryCode != l.MaybeMissingCountryCode {
				t.Fatalf("%+v written back reads as %+v", l, a)
			}
		}
	})
}

func checkRejection(t *testing.T, rej *Rejection, sms bool) {
	t.Helper()
	if !slices.Contains(Fields, rej.Field) || (sms && rej.Field == FieldEmail) || (!sms && rej.Field == FieldPhone) {
		t.Fatalf("field %q", rej.Field)
	}
	if rej.Path != "fuzz.txt" || rej.Line < 1 || rej.Message == "" || strings.ContainsAny(rej.Message, "\n\r") {
		t.Fatalf("rejection %+v", rej)
	}
	if want := fmt.Sprintf("fuzz.txt:%d: %s: %s", rej.Line, rej.Field, rej.Message); rej.Error() != want {
		t.Fatalf("Error() = %q, want %q", rej.Error(), want)
	}
	if len(rej.Message) > 400 {
		t.Fatalf("message of %d bytes: %q", len(rej.Message), rej.Message)
	}
}

func checkValidLine(t *testing.T, l Line, sms bool) {
	t.Helper()
	if sms {
		if err := consent.ValidateE164(l.Recipient); err != nil {
			t.Fatalf("recipient %q: %v", l.Recipient, err)
		}
	} else if r, err := consent.NormalizeEmail(l.Recipient); err != nil || r != l.Recipient {
		t.Fatalf("recipient %q renormalises to %q, %v", l.Recipient, r, err)
	}
	if _, err := consent.ParseStatus(string(l.Status)); err != nil {
		t.Fatalf("status %q", l.Status)
	}
	if !l.Source.IsBrandSource() {
		t.Fatalf("source %q", l.Source)
	}
	if l.ConsentDate.Before(consent.Floor) || l.ConsentDate.After(testNow.Add(futureSlack)) {
		t.Fatalf("date %s out of range", l.ConsentDate)
	}
	if want := l.Source != consent.Source2015 && consent.TooOld(l.ConsentDate, testNow); l.TooOld != want {
		t.Fatalf("TooOld = %v for %s %s", l.TooOld, l.Source, l.ConsentDate)
	}
	if code := consent.CheckSource(l.ConsentDate, l.Source, l.Status); code != "" {
		t.Fatalf("%s %s %s is valid, but İYS refuses it (%s)", l.Source, l.Status, l.ConsentDate, code)
	}
	if l.MaybeMissingCountryCode != (sms && consent.MaybeMissingCountryCode(l.Recipient)) {
		t.Fatalf("MaybeMissingCountryCode = %v for %s", l.MaybeMissingCountryCode, l.Recipient)
	}
	if utf8.RuneCountInString(l.ExternalID) > maxExternalID || strings.IndexFunc(l.ExternalID, unicode.IsControl) >= 0 ||
		l.ExternalID != trimSpaceTab(l.ExternalID) || strings.Contains(l.ExternalID, ";") {
		t.Fatalf("external id %q", l.ExternalID)
	}
}

// referenceLineCount counts lines the plain way: a BOM off the front, then
// one line per \n, and one more for text after the last \n.
func referenceLineCount(data []byte) int {
	data = bytes.TrimPrefix(data, bom)
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// format writes a valid line back in the upload format.
func format(l Line, sms bool) string {
	r := l.Recipient
	if sms {
		r = strings.TrimPrefix(r, "+")
	}
	return fmt.Sprintf("%s;%s;%s;%s;%s", r, l.Source, l.Status,
		l.ConsentDate.Time().In(consent.Istanbul).Format("02.01.2006 15:04:05"), l.ExternalID)
}
