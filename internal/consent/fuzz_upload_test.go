package consent

import (
	"strings"
	"testing"
	"time"
)

// The fuzzers of what internal/upload relies on: round trips, idempotence, and
// error messages that never repeat the input.

func FuzzParseUploadTime(f *testing.F) {
	for _, s := range []string{"15.05.2025 14:23:00", "29.02.2024 23:59:59", "31.02.2025 10:00:00", "1.5.2025 14:23:00",
		"15.05.2025 24:00:00", "27.03.2016 03:30:00", "08.11.2015 03:30:00", "01.05.2015 00:00:00", "00.00.0000 00:00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseUploadTime(s)
		if err != nil {
			if err.Error() == "" || !d.IsZero() {
				t.Fatalf("ParseUploadTime(%q) = %v, %q", s, d, err)
			}
			return
		}
		// Written back in the upload layout it is the input, and the same
		// moment reads back from İYS's layout.
		if back := d.Time().In(Istanbul).Format("02.01.2006 15:04:05"); back != s {
			t.Fatalf("ParseUploadTime(%q) writes back as %q", s, back)
		}
		iys, err := ParseDate(d.String())
		if err != nil || !iys.Equal(d) {
			t.Fatalf("ParseDate(%q) = %v, %v; want %v", d.String(), iys, err, d)
		}
		ref, err := time.ParseInLocation("02.01.2006 15:04:05", s, Istanbul)
		if err != nil || !ref.Equal(d.Time()) {
			t.Fatalf("time.ParseInLocation(%q) = %v, %v; want %v", s, ref, err, d.Time())
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"user@example.com", " User.Name+tag@Example.COM.TR ", "İNFO@EXAMPLE.COM", "a@b.c",
		"ayşe@example.com", "\u212Aelvin@example.com", "a..b@example.com", "a@-b.com", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizeEmail(s)
		if err != nil {
			// The message does not depend on the letters: it never repeats the address.
			if _, err2 := NormalizeEmail(uploadRot13(s)); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("NormalizeEmail(%q) = %q but NormalizeEmail(%q) = %v", s, err, uploadRot13(s), err2)
			}
			return
		}
		in := strings.TrimSpace(s)
		if !uploadIsASCII(in) {
			t.Fatalf("NormalizeEmail(%q) accepted non-ASCII as %q", s, out)
		}
		if out != strings.ToLower(in) || len(out) > 254 || strings.Count(out, "@") != 1 {
			t.Fatalf("NormalizeEmail(%q) = %q", s, out)
		}
		if again, err := NormalizeEmail(out); err != nil || again != out {
			t.Fatalf("NormalizeEmail(%q) = %q, %v; not idempotent", out, again, err)
		}
		if r, err := NormalizeRecipient(TypeEposta, out); err != nil || r != out {
			t.Fatalf("NormalizeRecipient(EPOSTA, %q) = %q, %v", out, r, err)
		}
		if _, err := NormalizeEmail(uploadRot13(s)); err != nil {
			t.Fatalf("NormalizeEmail(%q) ok but NormalizeEmail(%q) = %v", s, uploadRot13(s), err)
		}
	})
}

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"905331234562", "+905331234562", "05331234562", "90533123456", "1234567890",
		"123456789012345", "1234567890123456", "90 533 123 45 62", "٩٠٥٣٣١٢٣٤٥٦٢", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizePhone(s)
		if err != nil {
			if !strings.Contains(err.Error(), "905331234562") {
				t.Fatalf("NormalizePhone(%q) = %q: no expected shape", s, err)
			}
			// Digits past the second decide nothing: the message never repeats them.
			if _, err2 := NormalizePhone(uploadScramble(s)); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("NormalizePhone(%q) = %q but NormalizePhone(%q) = %v", s, err, uploadScramble(s), err2)
			}
			return
		}
		if out != "+"+s || len(s) < 10 || len(s) > 15 || s[0] == '0' || (strings.HasPrefix(s, "90") && len(s) != 12) {
			t.Fatalf("NormalizePhone(%q) = %q", s, out)
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				t.Fatalf("NormalizePhone(%q) accepted a non-digit", s)
			}
		}
		if err := ValidateE164(out); err != nil {
			t.Fatalf("ValidateE164(%q) = %v", out, err)
		}
		for _, in := range []string{out, s, " " + out + " "} {
			if r, err := NormalizeRecipient(TypeMesaj, in); err != nil || r != out {
				t.Fatalf("NormalizeRecipient(MESAJ, %q) = %q, %v; want %q", in, r, err, out)
			}
		}
	})
}

// uploadRot13 swaps ASCII letters for others of the same case, byte by byte
// (invalid UTF-8 must stay as it is); no email rule looks at which letter a
// letter is.
func uploadRot13(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = 'a' + (c-'a'+13)%26
		case 'A' <= c && c <= 'Z':
			b[i] = 'A' + (c-'A'+13)%26
		}
	}
	return string(b)
}

// uploadScramble changes every ASCII digit after the second to another digit
// (the rules look at the first two digits and the length only).
func uploadScramble(s string) string {
	b := []byte(s)
	for i := 2; i < len(b); i++ {
		if '0' <= b[i] && b[i] <= '9' {
			b[i] = '0' + (b[i]-'0'+7)%10
		}
	}
	return string(b)
}

func uploadIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
