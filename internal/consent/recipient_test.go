package consent

import (
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{
		"user@example.com":              "user@example.com",
		"  Ayse.Yilmaz@Example.COM.tr ": "ayse.yilmaz@example.com.tr",
		"mehmet+news@example.org":       "mehmet+news@example.org",
		"a_b%c-d@sub-1.example.io":      "a_b%c-d@sub-1.example.io",
	}
	for in, want := range good {
		if got, err := NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = (%q, %v), want %q", in, got, err, want)
		}
	}
	bad := []string{"", "plain", "a@b", "a@@b.com", "a@b@c.com", "@example.com", ".a@example.com", "a.@example.com",
		"a..b@example.com", "a b@example.com", "ayşe@example.com", "a@exa mple.com", "a@-example.com", "a@example-.com",
		"a@example..com", "a@example.c", "a@example.c0m", "a@örnek.com", strings.Repeat("a", 65) + "@example.com",
		"a@" + strings.Repeat("b", 250) + ".com", "a!b@example.com", "a@exa_mple.com"}
	for _, in := range bad {
		if got, err := NormalizeEmail(in); err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, want an error", in, got)
		} else if in != "" && strings.Contains(err.Error(), in) {
			t.Errorf("NormalizeEmail(%q): the error echoes the address: %v", in, err)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	good := map[string]string{"905331234562": "+905331234562", "4915112345678": "+4915112345678", "1234567890": "+1234567890", "123456789012345": "+123456789012345"}
	for in, want := range good {
		if got, err := NormalizePhone(in); err != nil || got != want {
			t.Errorf("NormalizePhone(%q) = (%q, %v), want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "05331234562", "+905331234562", "90533123456", "9053312345621", "90 533 123 45 62",
		"905-331234562", "(90)5331234562", "905.331234562", "123456789", "1234567890123456", "5331234562x"} {
		got, err := NormalizePhone(in)
		if err == nil {
			t.Errorf("NormalizePhone(%q) = %q, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), "905331234562") {
			t.Errorf("NormalizePhone(%q): the message must show the expected shape: %v", in, err)
		}
	}
}

func TestMaskRecipient(t *testing.T) {
	tests := map[string]string{
		"+905331234562":    "+90533*****62",
		"user@example.com": "u***@example.com",
		"@example.com":     "***@example.com",
		"12345":            "*****",
		"+9053311":         "+90****1",
		"+5331234562":      "+53*******2",
		"+4155552671":      "+41*******1",
	}
	for in, want := range tests {
		if got := MaskRecipient(in); got != want {
			t.Errorf("MaskRecipient(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizePhoneInput(t *testing.T) {
	cases := []struct {
		in      string
		want    string
		missing bool
		bad     bool
	}{
		{"905331234562", "+905331234562", false, false},
		{"+905331234562", "+905331234562", false, false},
		{" +905331234562 ", "+905331234562", false, false},
		{"5331234562", "+5331234562", true, false},
		{"+5331234562", "+5331234562", true, false},
		{"4155552671", "+4155552671", false, false},
		{"05331234562", "", false, true},
		{"++905331234562", "", false, true},
		{"+90 533 123 45 62", "", false, true},
		{"", "", false, true},
	}
	for _, c := range cases {
		got, missing, err := NormalizePhoneInput(c.in)
		if (err != nil) != c.bad || got != c.want || missing != c.missing {
			t.Errorf("NormalizePhoneInput(%q) = %q, %v, %v; want %q, %v, bad %v", c.in, got, missing, err, c.want, c.missing, c.bad)
		}
	}
}
