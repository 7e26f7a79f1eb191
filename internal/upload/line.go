package upload

import "github.com/iys-sync/iys-sync/internal/consent"

// Line is a valid line of an upload file.
type Line struct {
	Number          int            // 1-based, blank lines included
	Recipient       string         // normalised: lower-case email, or "+905331234562"
	Status          consent.Status // ONAY or RET
	ConsentDate     consent.Date
	Source          consent.Source
	ExternalID      string // "" when absent
	UnknownPlatform bool   // the platform was not in the table: Source is the default
	TooOld          bool   // more than 3 business days before Now (consent.TooOld); never for HS_2015
	// MaybeMissingCountryCode flags 10 digits starting with 5: kept, as a
	// foreign number may look so, but most likely a Türkiye mobile without
	// its 90 (consent.MaybeMissingCountryCode).
	MaybeMissingCountryCode bool
}

// Consents expands the line into one consent per type, for the recipient type
// the import was given. The external id is not part of consent.Consent: the
// caller keeps it from the Line.
func (l Line) Consents(types []consent.Type, rt consent.RecipientType) []consent.Consent {
	return l.AppendConsents(make([]consent.Consent, 0, len(types)), types, rt)
}

// AppendConsents is Consents appending to dst, for callers that reuse a slice.
func (l Line) AppendConsents(dst []consent.Consent, types []consent.Type, rt consent.RecipientType) []consent.Consent {
	for _, t := range types {
		dst = append(dst, consent.Consent{
			Recipient:     l.Recipient,
			RecipientType: rt,
			Type:          t,
			Status:        l.Status,
			ConsentDate:   l.ConsentDate,
			Source:        l.Source,
		})
	}
	return dst
}
