// Package consent is the domain of iys-sync: what a consent is, how İYS wants it
// written, and the rules İYS applies to it. It uses the standard library only,
// so that every other package, the sandbox included, shares one definition.
package consent

import (
	"fmt"
	"strings"
)

// Type is İYS's channel of a consent.
type Type string

// The İYS consent types.
const (
	TypeMesaj  Type = "MESAJ"  // SMS and other messages
	TypeArama  Type = "ARAMA"  // calls
	TypeEposta Type = "EPOSTA" // email
)

// Types lists every consent type in İYS's order.
var Types = []Type{TypeMesaj, TypeArama, TypeEposta}

// ParseType accepts exactly one of İYS's type names.
func ParseType(s string) (Type, error) {
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown consent type %q: want MESAJ, ARAMA or EPOSTA", s)
}

// Status is the wanted state of a consent.
type Status string

// The two statuses. İYS spells a refusal RET, never "RED".
const (
	StatusOnay Status = "ONAY"
	StatusRet  Status = "RET"
)

// ParseStatus accepts exactly ONAY or RET, in capitals.
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case StatusOnay, StatusRet:
		return Status(s), nil
	}
	return "", fmt.Errorf("must be ONAY or RET, in capitals")
}

// RecipientType tells a person from a merchant; both may exist for one address.
type RecipientType string

// The recipient types.
const (
	Bireysel RecipientType = "BIREYSEL"
	Tacir    RecipientType = "TACIR"
)

// ParseRecipientType accepts exactly BIREYSEL or TACIR.
func ParseRecipientType(s string) (RecipientType, error) {
	switch RecipientType(s) {
	case Bireysel, Tacir:
		return RecipientType(s), nil
	}
	return "", fmt.Errorf("unknown recipient type %q: want BIREYSEL or TACIR", s)
}

// Consent is one consent or refusal as İYS receives it.
type Consent struct {
	Recipient     string        `json:"recipient"` // normalised: +digits or lower-case email
	RecipientType RecipientType `json:"recipientType"`
	Type          Type          `json:"type"`
	Status        Status        `json:"status"`
	ConsentDate   Date          `json:"consentDate"`
	Source        Source        `json:"source"`
}

// Key identifies the record a consent belongs to, per brand.
type Key struct {
	Recipient     string
	RecipientType RecipientType
	Type          Type
}

// Key returns the consent's record key.
func (c Consent) Key() Key {
	return Key{Recipient: c.Recipient, RecipientType: c.RecipientType, Type: c.Type}
}

// Validate checks the values İYS checks on every consent, before any state is
// consulted: the date's range, the source, and the source's special cases.
// It returns the İYS code İYS would answer, or "" when the consent is acceptable.
func (c Consent) Validate(now Date) Code {
	if _, err := ParseType(string(c.Type)); err != nil {
		return CodeUnknownType
	}
	if _, err := ParseRecipientType(string(c.RecipientType)); err != nil {
		return CodeUnknownRecipientType
	}
	if _, err := ParseStatus(string(c.Status)); err != nil {
		return CodeUnknownStatus
	}
	if !c.Source.IsBrandSource() {
		return CodeUnknownSource
	}
	if c.Type == TypeEposta {
		if _, err := NormalizeEmail(c.Recipient); err != nil {
			return CodeBadEmail
		}
	} else if err := ValidateE164(c.Recipient); err != nil {
		return CodeBadPhone
	}
	return CheckDate(c.ConsentDate, c.Source, c.Status, now)
}

// JoinTypes writes types as İYS lists them: "MESAJ,ARAMA".
func JoinTypes(ts []Type, sep string) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, sep)
}
