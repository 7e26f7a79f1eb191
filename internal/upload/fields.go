package upload

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// maxFields is the most fields a line may have: address, platform,
// permission, timestamp, external id.
const maxFields = 5

// splitFields cuts s at each ';' into f, trimming spaces and tabs, without
// allocating. It returns the number of fields, which may exceed len(f): then
// only the first len(f) are set.
func splitFields(s string, f *[maxFields]string) int {
	n := 0
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ';' {
			continue
		}
		if n < maxFields {
			f[n] = trimSpaceTab(s[start:i])
		}
		n++
		start = i + 1
	}
	if n < maxFields {
		f[n] = trimSpaceTab(s[start:])
	}
	return n + 1
}

// countFields counts fields on the raw bytes, before the line is turned into
// a string, so that a line with a wrong count costs no allocation.
func countFields(b []byte) int { return bytes.Count(b, semicolon) + 1 }

var semicolon = []byte{';'}

// trimSpaceTab trims what docs/upload-format.md says is ignored around a field:
// spaces and tabs, nothing else.
func trimSpaceTab(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// isBlank reports whether a line is empty or only white space (Unicode
// white space; invalid UTF-8 is not white space).
func isBlank(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c != ' ' && c != '\t' && c != '\r' && c != '\v' && c != '\f' && c != '\n' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || !unicode.IsSpace(r) {
			return false
		}
		i += size
	}
	return true
}
