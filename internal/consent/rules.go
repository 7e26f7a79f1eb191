package consent

// İYS's rules, as pure functions, in the order of docs/iys-api.md. The sandbox
// enforces them and the engine pre-checks with them, so both agree.

// CheckDate applies the rules on the date alone: not before 2015-05-01, not in
// the future, and the rules of CheckSource.
func CheckDate(d Date, src Source, st Status, now Date) Code {
	if d.IsZero() {
		return CodeBadDateFormat
	}
	if code := CheckSource(d, src, st); code != "" {
		return code
	}
	switch {
	case d.Before(Floor):
		return CodeBefore2015
	case d.After(now):
		return CodeFutureDate
	}
	return ""
}

// CheckSource applies the rules tied to a source: HS_2015 only on
// 2015-05-01 00:00:00, HS_KARAR only for RET. The upload files and the
// intake apply them as they read a consent, so such a consent never waits
// for a sync to be refused.
func CheckSource(d Date, src Source, st Status) Code {
	switch {
	case src == Source2015 && !d.Equal(Floor):
		return CodeBadHS2015Date
	case src == SourceKarar && st != StatusRet:
		return CodeUnknownSource // [guess] İYS publishes no code for an ONAY with HS_KARAR
	}
	return ""
}

// TooOldExempt tells the sources İYS takes at any time: HS_2015 consents all
// carry the date 2015-05-01, so the 3-business-day rule cannot apply to them.
func TooOldExempt(src Source) bool { return src == Source2015 }

// Held is what İYS holds for one key: the last recorded status and its date.
type Held struct {
	Status      Status
	ConsentDate Date
}

// CheckAgainstHeld applies the rules that depend on what İYS holds for the
// key (held is nil when it holds nothing): the first record cannot be a RET,
// the same status twice is refused, a new consent must be newer than the held
// one, and a consent is recorded at most 3 business days after it was given.
func CheckAgainstHeld(held *Held, c Consent, now Date) Code {
	if held == nil {
		if c.Status == StatusRet {
			return CodeFirstIsRet
		}
	} else {
		if held.Status == c.Status {
			return CodeSameStatus
		}
		if !c.ConsentDate.After(held.ConsentDate) {
			return CodeNewerHeld
		}
	}
	if !TooOldExempt(c.Source) && TooOld(c.ConsentDate, now) {
		return CodeTooOld
	}
	return ""
}

// Evaluate is İYS's whole verdict on one consent recorded at now: "" when it
// is recorded, else the code İYS answers.
func Evaluate(held *Held, c Consent, now Date) Code {
	if code := c.Validate(now); code != "" {
		return code
	}
	return CheckAgainstHeld(held, c, now)
}

// PreCheck is what the engine can know without asking İYS: the value rules
// that no state at İYS can change. A consent failing it is never sent.
func PreCheck(c Consent, now Date) Code { return c.Validate(now) }
