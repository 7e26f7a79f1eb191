package upload

import "fmt"

// CheckFileName refuses a file whose name does not end in .txt or .csv, in
// any case. It looks at the name only, so it also suits uploaded file names.
func CheckFileName(path string) error {
	if hasSuffixFold(path, ".txt") || hasSuffixFold(path, ".csv") {
		return nil
	}
	return fmt.Errorf("%s: file name must end in .txt or .csv (any case)", path)
}

// hasSuffixFold compares ASCII only: strings.EqualFold would let a non-ASCII
// letter that folds to an ASCII one pass.
func hasSuffixFold(s, suffix string) bool {
	if len(s) < len(suffix) {
		return false
	}
	s = s[len(s)-len(suffix):]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != suffix[i] {
			return false
		}
	}
	return true
}
