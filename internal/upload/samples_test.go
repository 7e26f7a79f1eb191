package upload

import (
	"os"
	"path/filepath"
	"testing"
)

// samplesDir holds the sample upload files of docs/upload-format.md.
const samplesDir = "testdata/samples"

func openSample(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestSamples(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{{"email-sample.txt", emailOpts()}, {"sms-sample.txt", smsOpts()}} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScanner(openSample(t, tt.name), tt.name, tt.opts)
			for s.Scan() {
				if _, rej := s.Line(); rej != nil {
					t.Errorf("%v", rej)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			c := s.Counts()
			checkIdentity(t, c)
			if c != (Counts{Lines: 3, Valid: 3}) {
				t.Fatalf("counts %+v, want 3 valid lines, no warning", c)
			}
		})
	}
}

// With the real clock the samples' 2025 dates are long past: every line is
// still valid, and counted as older than 3 business days.
func TestSamplesAreOldToday(t *testing.T) {
	for _, tt := range []struct {
		name string
		ch   Channel
	}{{"email-sample.txt", Email}, {"sms-sample.txt", SMS}} {
		s := NewScanner(openSample(t, tt.name), tt.name, Options{Channel: tt.ch})
		for s.Scan() {
			if l, rej := s.Line(); rej != nil || !l.TooOld {
				t.Errorf("%s: line %+v, rejection %v, want valid and too old", tt.name, l, rej)
			}
		}
		if c := s.Counts(); c.Valid != 3 || c.OlderThan3BusinessDays != 3 {
			t.Errorf("%s: counts %+v, want 3 valid, all older than 3 business days", tt.name, c)
		}
	}
}
