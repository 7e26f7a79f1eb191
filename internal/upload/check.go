package upload

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Limits of upload-format.md.
const (
	maxExternalID = 255              // Unicode characters
	futureSlack   = consent.MaxAhead // a timestamp may be this far ahead of now
)

// rejection is a fault found in a line; field "" means none.
type rejection struct {
	field   string
	message string
}

// checker validates one line at a time against fixed options.
type checker struct {
	channel   Channel
	latest    consent.Date // now + futureSlack
	cutoff    int          // day number from which a line is not too old
	platforms platformCache
}

func newChecker(o Options) checker {
	return checker{
		channel:   o.Channel,
		latest:    o.Now.Add(futureSlack),
		cutoff:    tooOldCutoff(o.Now),
		platforms: newPlatformCache(o.defaultSource()),
	}
}

// line checks a non-blank line, without its line end. Faults are looked for
// in the order of upload-format.md: line structure, address, platform,
// permission, timestamp, external id; the first one found is reported.
func (c *checker) line(b []byte) (Line, rejection) {
	if !utf8.Valid(b) {
		return Line{}, rejection{FieldLine, "is not valid UTF-8: save the file as UTF-8 text"}
	}
	if n := countFields(b); n != 4 && n != 5 {
		return Line{}, rejection{FieldLine, fmt.Sprintf("has %d fields separated by ;, want 4 or 5: "+
			"address; platform; permission; timestamp; optional external id", n)}
	}
	// One allocation: every string of the Line is a slice of this one.
	var f [maxFields]string
	n := splitFields(string(b), &f)

	var l Line
	var rej rejection
	if l.Recipient, rej = c.address(f[0]); rej.field != "" {
		return Line{}, rej
	}
	if l.Source, l.UnknownPlatform, rej = c.platform(f[1]); rej.field != "" {
		return Line{}, rej
	}
	if l.Status, rej = checkPermission(f[2]); rej.field != "" {
		return Line{}, rej
	}
	if l.ConsentDate, rej = c.timestamp(f[3]); rej.field != "" {
		return Line{}, rej
	}
	l.TooOld = dayNumber(l.ConsentDate.Time()) < c.cutoff
	if n == 5 {
		if rej = checkExternalID(f[4]); rej.field != "" {
			return Line{}, rej
		}
		l.ExternalID = f[4]
	}
	return l, rejection{}
}

// address normalises the recipient; the messages never repeat it (KVKK).
func (c *checker) address(s string) (string, rejection) { return checkAddress(c.channel, s) }

// checkAddress normalises a recipient of the channel: the address rule of
// upload lines and intake items alike.
func checkAddress(channel Channel, s string) (string, rejection) {
	if channel == Email {
		r, err := consent.NormalizeEmail(s)
		if err != nil {
			return "", rejection{FieldEmail, err.Error()}
		}
		return r, rejection{}
	}
	r, err := consent.NormalizePhone(s)
	if err != nil {
		return "", rejection{FieldPhone, err.Error()}
	}
	return r, rejection{}
}

// platform maps the platform field to an İYS source; unknown tells that it
// was not in the table and the default source stands for it.
func (c *checker) platform(p string) (src consent.Source, unknown bool, rej rejection) {
	src, known, err := c.platforms.source(p)
	if err != nil {
		return "", false, rejection{FieldPlatform, err.Error()}
	}
	return src, !known, rejection{}
}

func (c *checker) timestamp(s string) (consent.Date, rejection) {
	d, err := consent.ParseUploadTime(s)
	if err != nil {
		msg := err.Error()
		if !strings.Contains(msg, "dd.MM.yyyy") {
			msg += ": want dd.MM.yyyy HH:mm:ss"
		}
		return d, rejection{FieldTimestamp, msg}
	}
	return d, c.moment(d)
}

// moment applies the timestamp rules that do not depend on how the time was
// written (upload lines and intake items alike): not ahead of now by more
// than futureSlack, not before consent.Floor.
func (c *checker) moment(d consent.Date) rejection {
	switch {
	case d.After(c.latest):
		return rejection{FieldTimestamp, "is more than 5 minutes in the future: want the time the consent was given, Türkiye time"}
	case d.Before(consent.Floor):
		return rejection{FieldTimestamp, "is before 01.05.2015 00:00:00, which İYS never accepts: " +
			"older consents are written with platform HS_2015 and 01.05.2015 00:00:00"}
	}
	return rejection{}
}

// checkPermission reads the permission field: exactly ONAY or RET.
func checkPermission(s string) (consent.Status, rejection) {
	st, err := consent.ParseStatus(s)
	if err != nil {
		return "", rejection{FieldPermission, err.Error()}
	}
	return st, rejection{}
}

// checkExternalID allows "" (no external id, also as an empty fifth field).
func checkExternalID(s string) rejection {
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) {
			return rejection{FieldExternalID, "must not contain control characters (tabs, line breaks, ...)"}
		}
		n++
	}
	if n > maxExternalID {
		return rejection{FieldExternalID, fmt.Sprintf("is %d characters long, want at most %d", n, maxExternalID)}
	}
	return rejection{}
}
