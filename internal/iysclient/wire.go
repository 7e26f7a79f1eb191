package iysclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Lenient JSON types for fields whose shape docs/iys-api.md does not pin down:
// codes and ids may come as numbers or strings, a location as one string or
// a list. Where the doc is exact (a consent's consentDate) decoding stays strict.

var jsonNull = []byte("null")

// flexString reads a JSON string or number.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, jsonNull) {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or number, got %.20s", b)
	}
	*f = flexString(n.String())
	return nil
}

// flexStrings reads a list of strings or one string.
type flexStrings []string

func (f *flexStrings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, jsonNull) {
		*f = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var l []flexString
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = string(s)
		}
		*f = out
		return nil
	}
	var s flexString
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*f = []string{string(s)}
	return nil
}

// flexInt reads a JSON number or a string holding one.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(s)))
	if err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	*f = flexInt(n)
	return nil
}

// flexBool reads true/false, "true"/"false" or 1/0.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := json.Unmarshal(b, &s); err != nil {
		var v bool
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = flexBool(v)
		return nil
	}
	v, err := strconv.ParseBool(strings.TrimSpace(string(s)))
	if err != nil && s != "" {
		return fmt.Errorf("want a boolean, got %q", s)
	}
	*f = flexBool(v)
	return nil
}

// lenientDate reads a timestamp İYS writes itself (creationDate): its own
// layout first, then the usual variants; an unreadable one is left zero, as
// it only informs and must not sink a whole answer.
type lenientDate consent.Date

var lenientLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

func (d *lenientDate) UnmarshalJSON(b []byte) error {
	*d = lenientDate(parseLenientDate(b))
	return nil
}

func parseLenientDate(b []byte) consent.Date {
	var s flexString
	if json.Unmarshal(b, &s) != nil || s == "" {
		return consent.Date{}
	}
	return parseLenientString(string(s))
}

func parseLenientString(s string) consent.Date {
	s = strings.TrimSpace(s)
	if d, err := consent.ParseDate(s); err == nil {
		return d
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return consent.NewDate(t)
	}
	for _, l := range lenientLayouts {
		if t, err := time.ParseInLocation(l, s, consent.Istanbul); err == nil {
			return consent.NewDate(t)
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 1e11 {
		return consent.NewDate(time.UnixMilli(ms)) // epoch milliseconds
	}
	return consent.Date{}
}
