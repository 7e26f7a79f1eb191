package upload

import (
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Fields of an Item that an upload line does not have. Every other fault of
// an Item is reported with the Field of the same fault on a line (email,
// phone, platform, permission, timestamp, externalId), with the same message.
const (
	FieldSource = "source" // the İYS source code given instead of a platform
)

// Item is one consent given field by field, as the HTTP intake receives it,
// instead of as a line of an upload file. The fields hold what the sender
// wrote; Check reads them with the rules of the upload lines.
type Item struct {
	Channel Channel // decides how the recipient is read: Email or SMS
	// Recipient is an email address, or a phone number as the file writes it
	// (905331234562) or in E.164 (+905331234562).
	Recipient string
	// Platform is read like an upload line's platform column. Source, an İYS
	// brand source code (HS_WEB, ...), may be given instead; not both.
	Platform   string
	Source     string
	Permission string // ONAY or RET
	// Timestamp is RFC 3339 with an offset (2025-05-15T14:23:00+03:00) or
	// İYS's own YYYY-MM-DD HH:MM:SS, read as Türkiye time.
	Timestamp  string
	ExternalID string // "" when absent
}

// Fault is why an Item was rejected: the field and the message a line with
// the same value gets.
type Fault struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Validator checks Items with exactly the per-field checks, in the order and
// with the messages, of the upload lines' Scanner: address, platform,
// permission, timestamp (incl. the 5-minute future limit, the 2015 floor and
// the rules of HS_2015 and HS_KARAR), external id. Only the timestamp is
// written differently, and a phone may also carry E.164's +. A Validator is
// not safe for concurrent use: make one per request.
type Validator struct {
	c checker
}

// NewValidator makes a Validator whose unknown platforms map to
// defaultSource ("" is consent.SourceWeb) and whose future and
// 3-business-day checks are made against now (the zero Date: consent.Now()).
func NewValidator(defaultSource consent.Source, now consent.Date) (*Validator, error) {
	if err := checkDefaultSource(defaultSource); err != nil {
		return nil, err
	}
	o := Options{DefaultSource: defaultSource, Now: now}
	if o.Now.IsZero() {
		o.Now = consent.Now()
	}
	return &Validator{c: newChecker(o)}, nil
}

// Check validates it and returns the consent it gives as a Line (Number is 0),
// or the first fault in the order address, platform (or source), permission,
// timestamp, external id.
func (v *Validator) Check(it Item) (Line, *Fault) {
	var l Line
	var rej rejection
	fault := func(r rejection) (Line, *Fault) { return Line{}, &Fault{Field: r.field, Message: r.message} }
	// Spaces and tabs around a field are ignored, as around a line's fields.
	for _, f := range []*string{&it.Recipient, &it.Platform, &it.Source, &it.Permission, &it.Timestamp, &it.ExternalID} {
		*f = trimSpaceTab(*f)
	}

	switch it.Channel {
	case Email, SMS:
	default:
		// A caller's bug: the intake resolves the channel before.
		return fault(rejection{FieldLine, "has no channel: want email or sms"})
	}
	if l.Recipient, l.MaybeMissingCountryCode, rej = checkAddress(it.Channel, it.Recipient, true); rej.field != "" {
		return fault(rej)
	}
	srcField := FieldPlatform
	if it.Source != "" {
		srcField = FieldSource
		if it.Platform != "" {
			return fault(rejection{FieldSource, "give either source or platform, not both"})
		}
		if l.Source, rej = checkSource(it.Source); rej.field != "" {
			return fault(rej)
		}
	} else if l.Source, l.UnknownPlatform, rej = v.c.platform(it.Platform); rej.field != "" {
		return fault(rej)
	}
	if l.Status, rej = checkPermission(it.Permission); rej.field != "" {
		return fault(rej)
	}
	if l.ConsentDate, rej = parseItemTime(it.Timestamp); rej.field != "" {
		return fault(rej)
	}
	if rej = v.c.dated(&l, srcField); rej.field != "" {
		return fault(rej)
	}
	if rej = checkExternalID(it.ExternalID); rej.field != "" {
		return fault(rej)
	}
	l.ExternalID = it.ExternalID
	return l, nil
}

// checkSource reads an explicit İYS source code: one of the 13 brand sources,
// in any case, as the platform column takes them.
func checkSource(s string) (consent.Source, rejection) {
	upper := consent.Source(strings.ToUpper(s))
	switch {
	case upper.IsCitizen():
		return "", rejection{FieldSource, consent.ErrCitizenPlatform.Error()}
	case !upper.IsBrandSource():
		return "", rejection{FieldSource, "must be one of İYS's brand source codes (HS_WEB, HS_MOBIL, HS_MESAJ, ...): " +
			"give other names as platform"}
	}
	return upper, rejection{}
}

// itemTimeWant is what parseItemTime accepts, for its messages.
const itemTimeWant = "want RFC 3339 with an offset (2025-05-15T14:23:00+03:00) or YYYY-MM-DD HH:MM:SS in Türkiye time"

// parseItemTime reads an Item's timestamp: RFC 3339 with an offset (Z
// included), or İYS's YYYY-MM-DD HH:MM:SS read as Europe/Istanbul. Fractions
// of a second are dropped, as İYS keeps none.
func parseItemTime(s string) (consent.Date, rejection) {
	if len(s) == 19 && s[10] == ' ' {
		d, err := consent.ParseDate(s)
		if err != nil {
			msg := err.Error()
			if strings.HasPrefix(msg, "must be") {
				msg = "must be YYYY-MM-DD HH:MM:SS"
			}
			return consent.Date{}, rejection{FieldTimestamp, msg + ": " + itemTimeWant}
		}
		return d, rejection{}
	}
	// time.Parse's errors quote the value: the message is ours.
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || len(s) < len("2006-01-02T15:04:05Z") || (s[10] != 'T' && s[10] != 't') {
		return consent.Date{}, rejection{FieldTimestamp, "is not a valid time: " + itemTimeWant}
	}
	return consent.NewDate(t), rejection{}
}
