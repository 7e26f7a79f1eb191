package consent

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"
	_ "time/tzdata" // the distroless image has no zoneinfo; İYS dates must still be Türkiye time
)

// Istanbul is the zone İYS dates are written in.
var Istanbul = mustLoad("Europe/Istanbul")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("load time zone %s: %v", name, err))
	}
	return loc
}

// İYS's date layout: Türkiye time, no zone, no T. Sending UTC here is the
// classic 3-hours-off bug of other clients.
const iysLayout = "2006-01-02 15:04:05"

// Floor is the earliest consent date İYS accepts, and the only date HS_2015 takes.
var Floor = Date{time.Date(2015, 5, 1, 0, 0, 0, 0, Istanbul)}

// Date is a consent date as İYS knows it: a moment to the second, shown in
// Europe/Istanbul as YYYY-MM-DD HH:MM:SS. The zero Date is "no date".
type Date struct{ t time.Time }

// NewDate takes any moment; sub-second parts are dropped, as İYS keeps none.
func NewDate(t time.Time) Date {
	if t.IsZero() {
		return Date{}
	}
	return Date{t.Truncate(time.Second).In(Istanbul)}
}

// Now is the current moment as a Date.
func Now() Date { return NewDate(time.Now()) }

// ParseDate reads İYS's format exactly.
func ParseDate(s string) (Date, error) {
	return parseFixed(s, "YYYY-MM-DD HH:MM:SS", 0, 5, 8)
}

// ParseUploadTime reads the upload files' timestamp exactly: dd.MM.yyyy HH:mm:ss.
func ParseUploadTime(s string) (Date, error) {
	return parseFixed(s, "dd.MM.yyyy HH:mm:ss", 6, 3, 0)
}

// parseFixed reads a 19-character date shaped like want (letters stand for
// digits, the time at offset 11 in both formats), so
// that one-digit fields, missing seconds or other separators are refused,
// which time.Parse would accept for hours. The date must exist in Istanbul.
func parseFixed(s, want string, yearAt, monthAt, dayAt int) (Date, error) {
	// The error is built only when needed: upload files parse a million
	// dates, and an error made up front cost 3 allocations each.
	bad := func() error { return fmt.Errorf("must be %s", want) }
	if len(s) != 19 {
		return Date{}, bad()
	}
	for i := 0; i < 19; i++ {
		if isLetter(want[i]) {
			if s[i] < '0' || s[i] > '9' {
				return Date{}, bad()
			}
		} else if s[i] != want[i] {
			return Date{}, bad()
		}
	}
	num := func(at, n int) int {
		v := 0
		for _, c := range s[at : at+n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d := num(yearAt, 4), num(monthAt, 2), num(dayAt, 2)
	h, mi, sec := num(11, 2), num(14, 2), num(17, 2)
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return Date{}, fmt.Errorf("%s is not a real calendar time", s)
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, Istanbul)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || t.Hour() != h || t.Minute() != mi {
		return Date{}, fmt.Errorf("%s is not a real calendar time", s)
	}
	return Date{t}, nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// Time returns the moment, in Istanbul.
func (d Date) Time() time.Time { return d.t }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d.t.IsZero() }

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool { return d.t.Before(o.t) }

// After reports whether d is later than o.
func (d Date) After(o Date) bool { return d.t.After(o.t) }

// Equal reports whether d and o are the same moment.
func (d Date) Equal(o Date) bool { return d.t.Equal(o.t) }

// Add returns d moved by dur.
func (d Date) Add(dur time.Duration) Date { return Date{d.t.Add(dur)} }

// String writes İYS's format; the zero Date is "".
func (d Date) String() string {
	if d.t.IsZero() {
		return ""
	}
	return d.t.In(Istanbul).Format(iysLayout)
}

// MarshalJSON writes İYS's format.
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads İYS's format exactly; "" and null are the zero Date.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Date{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("consent date: %w", err)
	}
	if s == "" {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(s)
	if err != nil {
		return fmt.Errorf("consent date: %w", err)
	}
	*d = v
	return nil
}

// Value stores the date as a timestamptz.
func (d Date) Value() (driver.Value, error) {
	if d.t.IsZero() {
		return nil, nil
	}
	return d.t, nil
}

// Scan reads a timestamptz.
func (d *Date) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d = Date{}
	case time.Time:
		*d = NewDate(v)
	default:
		return fmt.Errorf("scan consent date: unsupported type %T", src)
	}
	return nil
}
