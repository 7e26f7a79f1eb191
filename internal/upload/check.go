package upload

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Limits of docs/upload-format.md.
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
// in the order of docs/upload-format.md: line structure, address, platform,
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
	if l.Recipient, l.MaybeMissingCountryCode, rej = checkAddress(c.channel, f[0], false); rej.field != "" {
		return Line{}, rej
	}
	if l.Source, l.UnknownPlatform, rej = c.platform(f[1]); rej.field != "" {
		return Line{}, rej
	}
	if l.Status, rej = checkPermission(f[2]); rej.field != "" {
		return Line{}, rej
	}
	if l.ConsentDate, rej = parseLineTime(f[3]); rej.field != "" {
		return Line{}, rej
	}
	if rej = c.dated(&l, FieldPlatform); rej.field != "" {
		return Line{}, rej
	}
	if n == 5 {
		if rej = checkExternalID(f[4]); rej.field != "" {
			return Line{}, rej
		}
		l.ExternalID = f[4]
	}
	return l, rejection{}
}

// checkAddress normalises a recipient of the channel: the address rule of
// upload lines and intake items alike; the messages never repeat it (KVKK).
// A phone is digits only in a file; asWritten (an intake item) also takes
// E.164's +. maybeMissingCC flags a phone that looks like a Türkiye mobile
// without its 90.
func checkAddress(channel Channel, s string, asWritten bool) (addr string, maybeMissingCC bool, rej rejection) {
	if channel == Email {
		r, err := consent.NormalizeEmail(s)
		if err != nil {
			return "", false, rejection{FieldEmail, err.Error()}
		}
		return r, false, rejection{}
	}
	var r string
	var err error
	if asWritten {
		r, maybeMissingCC, err = consent.NormalizePhoneInput(s)
	} else if r, err = consent.NormalizePhone(s); err == nil {
		maybeMissingCC = consent.MaybeMissingCountryCode(r)
	}
	if err != nil {
		return "", false, rejection{FieldPhone, err.Error()}
	}
	return r, maybeMissingCC, rejection{}
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

// parseLineTime reads a line's timestamp, dd.MM.yyyy HH:mm:ss.
func parseLineTime(s string) (consent.Date, rejection) {
	d, err := consent.ParseUploadTime(s)
	if err != nil {
		msg := err.Error()
		if !strings.Contains(msg, "dd.MM.yyyy") {
			msg += ": want dd.MM.yyyy HH:mm:ss"
		}
		return d, rejection{FieldTimestamp, msg}
	}
	return d, rejection{}
}

// Messages of the rules tied to a source (consent.CheckSource).
const (
	msgHS2015Date = "must be 01.05.2015 00:00:00 with HS_2015: İYS takes HS_2015 only for consents given before " +
		"1 May 2015, all dated that moment; give a later consent the platform where it was given"
	msgKararRet = "is HS_KARAR, which İYS takes for RET only (a refusal the brand decided itself): " +
		"give this ONAY the platform where it was given"
)

// dated applies the rules on a consent's date once its source and status
// are known (upload lines and intake items alike), then flags it too old:
// first the rules tied to the source, where srcField names the field that
// gave it (platform, or source on an item); then not ahead of now by more
// than futureSlack, not before consent.Floor. A fault of HS_2015 is the
// timestamp's, since choosing HS_2015 is deliberate; one of HS_KARAR is the
// source's, since an ONAY cannot be the brand's own refusal.
func (c *checker) dated(l *Line, srcField string) rejection {
	switch consent.CheckSource(l.ConsentDate, l.Source, l.Status) {
	case "":
	case consent.CodeBadHS2015Date:
		return rejection{FieldTimestamp, msgHS2015Date}
	default:
		return rejection{srcField, msgKararRet}
	}
	switch d := l.ConsentDate; {
	case d.After(c.latest):
		return rejection{FieldTimestamp, "is more than 5 minutes in the future: want the time the consent was given, Türkiye time"}
	case d.Before(consent.Floor):
		return rejection{FieldTimestamp, "is before 01.05.2015 00:00:00, which İYS never accepts: " +
			"older consents are written with platform HS_2015 and 01.05.2015 00:00:00"}
	}
	l.TooOld = !consent.TooOldExempt(l.Source) && dayNumber(l.ConsentDate.Time()) < c.cutoff
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
