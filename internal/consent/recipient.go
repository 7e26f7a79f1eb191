package consent

import (
	"errors"
	"strings"
)

// Email rules of docs/upload-format.md: ASCII only, local@domain.tld.
const (
	maxEmailLen = 254
	maxLocalLen = 64
)

// NormalizeEmail trims and lower-cases an address, then checks its shape.
// The error says what is expected without repeating the address.
func NormalizeEmail(s string) (string, error) {
	s = lowerASCII(strings.TrimSpace(s))
	if s == "" {
		return "", errors.New("must not be empty: want local@domain.tld")
	}
	if len(s) > maxEmailLen {
		return "", errors.New("is longer than 254 characters")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return "", errors.New("must have exactly one @: want local@domain.tld")
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return "", err
	}
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return s, nil
}

// lowerASCII lower-cases A-Z only. strings.ToLower would turn İ (U+0130) and
// the Kelvin sign into ASCII i and k, so "İNFO@EXAMPLE.COM" would pass the
// ASCII-only rule as info@example.com; left as they are, they are refused.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

func checkLocal(local string) error {
	switch {
	case local == "":
		return errors.New("has an empty local part before @: want local@domain.tld")
	case len(local) > maxLocalLen:
		return errors.New("has a local part longer than 64 characters")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return errors.New("has a leading, trailing or doubled dot in the local part")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !isAlnum(c) && !strings.ContainsRune("._%+-", rune(c)) {
			return errors.New("may only use ASCII letters, digits and . _ % + - before @ (no spaces or Turkish letters)")
		}
	}
	return nil
}

func checkDomain(domain string) error {
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return errors.New("must have a domain with a dot after @: want local@domain.tld")
	}
	for _, l := range labels {
		if l == "" {
			return errors.New("has an empty label in the domain: want local@domain.tld")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("has a domain label starting or ending with -")
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return errors.New("may only use ASCII letters, digits, - and . in the domain (no spaces or Turkish letters)")
			}
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 {
		return errors.New("must end in a top-level domain of 2 or more letters")
	}
	for i := 0; i < len(tld); i++ {
		if !isLetterByte(tld[i]) {
			return errors.New("must end in a top-level domain of letters only")
		}
	}
	return nil
}

func isAlnum(c byte) bool      { return isLetterByte(c) || isDigit(c) }
func isLetterByte(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

// phoneShape is the expected shape, shown in every phone error.
const phoneShape = "want digits only with the country code first, e.g. 905331234562 (90 and 10 digits for Türkiye, 10 to 15 digits for other countries)"

// NormalizePhone checks an upload file's phone number (digits, country code
// first) and returns it in E.164, as İYS wants it: "+905331234562".
func NormalizePhone(s string) (string, error) {
	if s == "" {
		return "", errors.New("must not be empty: " + phoneShape)
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return "", errors.New("must be digits only, without +, spaces, dashes, brackets or dots: " + phoneShape)
		}
	}
	switch {
	case s[0] == '0':
		return "", errors.New("starts with 0, so it lacks its country code: " + phoneShape)
	case strings.HasPrefix(s, "90") && len(s) != 12:
		return "", errors.New("is a Türkiye number (90) but does not have 12 digits: " + phoneShape)
	case len(s) < 10 || len(s) > 15:
		return "", errors.New("must have 10 to 15 digits: " + phoneShape)
	}
	return "+" + s, nil
}

// NormalizePhoneInput checks a phone number as people and systems write it
// (the HTTP intake, the user-table source): the file form (digits, country
// code first) or E.164 with its "+". It returns E.164. maybeMissingCC is
// true for 10 digits starting with 5: the shape of a Türkiye mobile written
// without its 90, kept because it is also a valid foreign number.
func NormalizePhoneInput(s string) (e164 string, maybeMissingCC bool, err error) {
	digits := strings.TrimPrefix(strings.TrimSpace(s), "+")
	e164, err = NormalizePhone(digits)
	if err != nil {
		return "", false, err
	}
	return e164, MaybeMissingCountryCode(e164), nil
}

// MaybeMissingCountryCode tells a number (digits or E.164) of 10 digits
// starting with 5: a Türkiye mobile without its 90, most likely.
func MaybeMissingCountryCode(phone string) bool {
	d := strings.TrimPrefix(phone, "+")
	return len(d) == 10 && d[0] == '5'
}

// ValidateE164 checks a phone recipient as İYS receives it: + and the digits
// of a number NormalizePhone would accept.
func ValidateE164(s string) error {
	if !strings.HasPrefix(s, "+") {
		return errors.New("must start with + and the country code")
	}
	_, err := NormalizePhone(s[1:])
	return err
}

// NormalizeRecipient normalises a recipient for a consent type: an email for
// EPOSTA, a phone (with or without the +) for the others.
func NormalizeRecipient(t Type, s string) (string, error) {
	if t == TypeEposta {
		return NormalizeEmail(s)
	}
	return NormalizePhone(strings.TrimPrefix(strings.TrimSpace(s), "+"))
}

// MaskRecipient hides most of a phone or email for logs (KVKK):
// "+90533*****62", "u***@example.com".
func MaskRecipient(s string) string {
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		if at == 0 {
			return "***" + s[at:]
		}
		return s[:1] + "***" + s[at:]
	}
	switch {
	case len(s) <= 7:
		return strings.Repeat("*", len(s))
	case len(s) < 12:
		// Short (a bad phone): hide at least half of it.
		return s[:3] + strings.Repeat("*", len(s)-4) + s[len(s)-1:]
	}
	return s[:6] + strings.Repeat("*", len(s)-8) + s[len(s)-2:]
}
