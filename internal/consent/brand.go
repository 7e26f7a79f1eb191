package consent

import "errors"

// MaxCodeLen is the longest brand, İYS or integrator code taken. İYS's are
// numbers of six digits or so (600001); the room above is for codes İYS may
// widen, never for anything that is not a code.
const MaxCodeLen = 20

// ErrBadCode is CheckCode's error: the shape of a code, never the value.
var ErrBadCode = errors.New("must be 1 to 20 ASCII letters or digits, as the İYS panel shows it (e.g. 600001)")

// CheckCode checks a brand, İYS or integrator code wherever one comes in (a
// flag, a setting, an intake path): it goes into İYS's URL paths, logs,
// terminals and file names, so nothing but letters and digits is taken.
func CheckCode(s string) error {
	if s == "" || len(s) > MaxCodeLen {
		return ErrBadCode
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return ErrBadCode
		}
	}
	return nil
}
