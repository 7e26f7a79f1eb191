package consent

import (
	"strings"
	"testing"
)

// Non-ASCII letters whose Unicode lower case is ASCII must be refused, not
// folded: "no Turkish letters" (docs/upload-format.md).
func TestNormalizeEmailDoesNotFoldNonASCII(t *testing.T) {
	for _, s := range []string{"İNFO@EXAMPLE.COM", "info@EXAMPLE.İO", "\u212Aaan@example.com", "user@\u212Aoc.com", "ayşe@example.com"} {
		if out, err := NormalizeEmail(s); err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, want an error", s, out)
		} else if strings.Contains(err.Error(), "@") && strings.Contains(err.Error(), s) {
			t.Errorf("NormalizeEmail(%q): message repeats the address: %v", s, err)
		}
	}
	if out, err := NormalizeEmail(" User.NAME@Example.COM\t"); err != nil || out != "user.name@example.com" {
		t.Fatalf("NormalizeEmail = %q, %v; want user.name@example.com", out, err)
	}
}

// A valid timestamp parses without allocating: upload files hold millions.
func TestParseUploadTimeDoesNotAllocate(t *testing.T) {
	var err error
	allocs := testing.AllocsPerRun(100, func() { _, err = ParseUploadTime("15.05.2025 14:23:00") })
	if err != nil || allocs != 0 {
		t.Fatalf("ParseUploadTime: %v allocations, err %v; want 0", allocs, err)
	}
	if _, err := ParseUploadTime("15.05.2025"); err == nil || err.Error() != "must be dd.MM.yyyy HH:mm:ss" {
		t.Fatalf("error %v, want the format", err)
	}
}
