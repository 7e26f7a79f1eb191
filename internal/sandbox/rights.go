package sandbox

import (
	"net/http"
	"slices"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// access is the solution partner's standing with each brand, as the İYS
// panel (İş Ortaklığı) sets it. Guarded by Sandbox.mu; admin endpoints change
// it, a reset returns it to the options.
type access struct {
	deny  map[string]bool // brand codes without any partnership
	rules []RightRule
}

func newAccess(o Options) *access {
	a := &access{deny: map[string]bool{}, rules: slices.Clone(o.Rights)}
	for _, b := range o.DenyBrands {
		a.deny[b] = true
	}
	return a
}

// allowed reports whether the partner holds a right for a brand and type.
func (a *access) allowed(b brandKey, t consent.Type, r Right) bool {
	if a.deny[b.brandCode] {
		return false
	}
	ok := true
	for _, x := range a.rules {
		if (x.IYSCode == "" || x.IYSCode == b.iysCode) && (x.BrandCode == "" || x.BrandCode == b.brandCode) &&
			(x.Type == "" || x.Type == t) && (x.Right == "" || x.Right == r) {
			ok = x.Granted
		}
	}
	return ok
}

// types is the mask of types (by typeIndex) holding a right.
func (a *access) types(b brandKey, r Right) (mask [3]bool, any bool) {
	for i, t := range typeOrder {
		mask[i] = a.allowed(b, t, r)
		any = any || mask[i]
	}
	return mask, any
}

// rightsJSON is one type's rights in the partner-rights listing.
type rightsJSON struct {
	Type             consent.Type `json:"type"`
	Read             bool         `json:"read"`
	Write            bool         `json:"write"`
	AgreementControl bool         `json:"agreementControl"`
}

func (a *access) list(b brandKey) []rightsJSON {
	out := make([]rightsJSON, 0, len(typeOrder))
	for _, t := range typeOrder {
		out = append(out, rightsJSON{
			Type:             t,
			Read:             a.allowed(b, t, RightRead),
			Write:            a.allowed(b, t, RightWrite),
			AgreementControl: a.allowed(b, t, RightAgreementControl),
		})
	}
	return out
}

// forbid answers İYS's refusal for a missing partner right.
func (s *Sandbox) forbid(w http.ResponseWriter, what string) {
	s.stats.count(&s.stats.forbidden)
	e := codeError(consent.CodeNotPermitted)
	e.Message += ": " + what
	writeErrors(w, http.StatusForbidden, e)
}

// brandGate refuses every path under a brand without partnership.
func (s *Sandbox) brandGate(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		denied := s.access.deny[r.PathValue("brandCode")]
		s.mu.Unlock()
		if denied {
			s.forbid(w, "no solution-partner permission for brand "+r.PathValue("brandCode"))
			return
		}
		h(w, r)
	}
}
