package consent

// Every İYS-specific code lives in this file, so that a correction is one edit.
// The marks follow docs/iys-api.md: [doc] İYS's own pages, [seen] seen
// in integrations, [guess] our inference.

// Code is an İYS error code such as "H174".
type Code string

// İYS error codes.
const (
	CodeUnknownType          Code = "H111" // [doc]
	CodeUnknownStatus        Code = "H112" // [guess] no published code; the gap in İYS's unknown-value codes
	CodeUnknownSource        Code = "H113" // [doc]
	CodeUnknownRecipient     Code = "H114" // [doc]
	CodeUnknownRecipientType Code = "H503" // [doc]
	CodeBefore2015           Code = "H155" // [doc]
	CodeBadHS2015Date        Code = "H156" // [guess]
	CodeBadDate              Code = "H157" // [seen]
	CodeBadDateFormat        Code = "H158" // [seen]
	CodeFutureDate           Code = "H162" // [guess]
	CodeBadEmail             Code = "H120" // [guess]
	CodeBadPhone             Code = "H121" // [guess]
	CodeNoRecipient          Code = "H122" // [guess]
	CodeBadPhone2            Code = "H160" // [guess]
	CodePhoneTooLong         Code = "H166" // [guess]
	CodeSameStatus           Code = "H174" // [seen]
	CodeFirstIsRet           Code = "H175" // [seen]
	CodeNewerHeld            Code = "H178" // [seen]
	CodeTooOld               Code = "H467" // [seen]
	CodeTooMany              Code = "H125" // [guess]
	CodeTooMany2             Code = "H091" // [guess]
	CodeDuplicateInRequest   Code = "H194" // [guess]
	CodeRateLimited          Code = "H083" // [guess] HTTP 429
	CodeRateLimited2         Code = "H124" // [guess] HTTP 429
	CodeBusy                 Code = "H123" // [guess]
	CodeTimeout              Code = "H192" // [guess]
	CodeLoginLimit           Code = "H084" // [seen] hourly login cap: pause about an hour
	CodeBadToken             Code = "H351" // [seen] HTTP 401
	CodeNotPermitted         Code = "H353" // [guess] partner rights missing
	CodeNotPermitted2        Code = "H245" // [guess]
	CodeNotFound             Code = "H404" // [guess] a consent query with no record; İYS's own code is not published
)

// Class is what a code means for the program: an outcome of docs/cli.md, or
// what to do next.
type Class string

// Classes. The first seven are record outcomes of docs/cli.md.
const (
	ClassAccepted      Class = "accepted"
	ClassAlreadyInIYS  Class = "already_in_iys"
	ClassNoPriorRecord Class = "no_prior_record"
	ClassSuperseded    Class = "superseded"
	ClassTooOld        Class = "too_old"
	ClassInvalid       Class = "invalid"
	ClassUnknown       Class = "unknown"
	ClassTransient     Class = "transient"     // retry with backoff
	ClassLoginLimit    Class = "login_limit"   // transient, but no login for about an hour
	ClassToken         Class = "token"         // log in again once, then retry
	ClassConfiguration Class = "configuration" // the İYS panel's rights: no retry helps
	ClassOurBug        Class = "our_bug"       // a request we should never have built
)

var codeClasses = map[Code]Class{
	CodeUnknownType: ClassInvalid, CodeUnknownStatus: ClassInvalid, CodeUnknownSource: ClassInvalid,
	CodeUnknownRecipient: ClassInvalid, CodeUnknownRecipientType: ClassInvalid,
	CodeBefore2015: ClassInvalid, CodeBadHS2015Date: ClassInvalid, CodeBadDate: ClassInvalid,
	CodeBadDateFormat: ClassInvalid, CodeFutureDate: ClassInvalid,
	CodeBadEmail: ClassInvalid, CodeBadPhone: ClassInvalid, CodeNoRecipient: ClassInvalid,
	CodeBadPhone2: ClassInvalid, CodePhoneTooLong: ClassInvalid,
	CodeSameStatus:         ClassAlreadyInIYS,
	CodeFirstIsRet:         ClassNoPriorRecord,
	CodeNewerHeld:          ClassSuperseded,
	CodeTooOld:             ClassTooOld,
	CodeTooMany:            ClassOurBug,
	CodeTooMany2:           ClassOurBug,
	CodeDuplicateInRequest: ClassOurBug,
	CodeRateLimited:        ClassTransient,
	CodeRateLimited2:       ClassTransient,
	CodeBusy:               ClassTransient,
	CodeTimeout:            ClassTransient,
	CodeLoginLimit:         ClassLoginLimit,
	CodeBadToken:           ClassToken,
	CodeNotPermitted:       ClassConfiguration,
	CodeNotPermitted2:      ClassConfiguration,
}

// Classify tells what an İYS code means. An unknown code is ClassUnknown: the
// record keeps the code and message for a person to read.
func Classify(c Code) Class {
	if cl, ok := codeClasses[c]; ok {
		return cl
	}
	return ClassUnknown
}

// IsOutcome reports whether the class is a final verdict on a record.
func (c Class) IsOutcome() bool {
	switch c {
	case ClassAccepted, ClassAlreadyInIYS, ClassNoPriorRecord, ClassSuperseded, ClassTooOld, ClassInvalid, ClassUnknown:
		return true
	}
	return false
}

// Outcome is the final word on a record, as stored and reported.
type Outcome string

// Outcomes of docs/cli.md.
const (
	OutcomeAccepted      Outcome = "accepted"
	OutcomeAlreadyInIYS  Outcome = "already_in_iys"
	OutcomeFromIYS       Outcome = "from_iys"
	OutcomeNoPriorRecord Outcome = "no_prior_record"
	OutcomeSuperseded    Outcome = "superseded"
	OutcomeTooOld        Outcome = "too_old"
	OutcomeInvalid       Outcome = "invalid"
	OutcomeUnknown       Outcome = "unknown"
)

// Outcomes lists every outcome in docs/cli.md's order.
var Outcomes = []Outcome{OutcomeAccepted, OutcomeAlreadyInIYS, OutcomeNoPriorRecord, OutcomeSuperseded,
	OutcomeTooOld, OutcomeInvalid, OutcomeUnknown, OutcomeFromIYS}

// Synced reports whether the outcome leaves the record synced (else rejected).
func (o Outcome) Synced() bool {
	return o == OutcomeAccepted || o == OutcomeAlreadyInIYS || o == OutcomeFromIYS
}

// OutcomeOf maps a verdict class to the record's outcome. It is false for the
// classes that are not verdicts (transient, token, configuration...).
func OutcomeOf(c Class) (Outcome, bool) {
	if !c.IsOutcome() {
		return "", false
	}
	return Outcome(c), true
}

// Record states of docs/cli.md.
type State string

// States.
const (
	StatePending  State = "pending"
	StateInFlight State = "in_flight"
	StateSynced   State = "synced"
	StateRejected State = "rejected"
	StateFailed   State = "failed"
)

// States lists every state in docs/cli.md's order.
var States = []State{StatePending, StateInFlight, StateSynced, StateRejected, StateFailed}

// Limits İYS sets on requests.
const (
	MaxBulkSize      = 1000 // consents in one bulk request [doc]
	BusinessDaysMax  = 3    // business days between giving a consent and recording it [doc]
	FeedRetentionDay = 7    // days the changes feed keeps [doc]
)
