package sandbox

import (
	"net/http"
	"slices"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// adminRecord is the body of the admin endpoints that name or set a record.
type adminRecord struct {
	IYSCode       string `json:"iysCode"`
	BrandCode     string `json:"brandCode"`
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
}

// key checks the brand and key fields, with İYS's codes.
func (a *adminRecord) key() (brandKey, recKey, *apiError) {
	if a.IYSCode == "" || a.BrandCode == "" {
		return brandKey{}, recKey{}, &apiError{Message: "iysCode and brandCode are required", Location: []string{"iysCode", "brandCode"}}
	}
	kd, code := kindFrom(a.RecipientType, a.Type)
	if code == "" {
		code = checkRecipient(a.Recipient, kd.typ())
	}
	if code != "" {
		e := codeError(code)
		return brandKey{}, recKey{}, &e
	}
	k, _ := queryKey(a.Recipient, kd)
	return brandKey{a.IYSCode, a.BrandCode}, k, nil
}

func checkRecipient(r string, t consent.Type) consent.Code {
	switch {
	case r == "":
		return consent.CodeNoRecipient
	case t == consent.TypeEposta:
		if _, err := consent.NormalizeEmail(r); err != nil {
			return consent.CodeBadEmail
		}
	default:
		if err := consent.ValidateE164(r); err != nil {
			return consent.CodeBadPhone
		}
	}
	return ""
}

// change checks a whole record to set; an empty consentDate is now.
func (a *adminRecord) change(now time.Time, srcOK func(consent.Source) bool) (brandKey, recKey, consent.Consent, *apiError) {
	bk, k, e := a.key()
	if e != nil {
		return bk, k, consent.Consent{}, e
	}
	st, err := consent.ParseStatus(a.Status)
	if err != nil {
		ce := codeError(consent.CodeUnknownStatus)
		return bk, k, consent.Consent{}, &ce
	}
	if !srcOK(consent.Source(a.Source)) {
		ce := codeError(consent.CodeUnknownSource)
		return bk, k, consent.Consent{}, &ce
	}
	d := consent.NewDate(now)
	if a.ConsentDate != "" {
		var code consent.Code
		if d, code = parseConsentDate(a.ConsentDate); code != "" {
			ce := codeError(code)
			return bk, k, consent.Consent{}, &ce
		}
	}
	c := consent.Consent{Recipient: k.recipient, RecipientType: k.kind.recipientType(), Type: k.kind.typ(),
		Status: st, ConsentDate: d, Source: consent.Source(a.Source)}
	return bk, k, c, nil
}

func (s *Sandbox) adminRecordJSON(st *state, b *brandState, e *event) recordJSON {
	r := st.recordJSON(b, e)
	r.IYSCode, r.BrandCode = b.key.iysCode, b.key.brandCode
	return r
}

// adminConsents is GET /_sandbox/consents[?brandCode=B][&iysCode=I].
func (s *Sandbox) adminConsents(w http.ResponseWriter, r *http.Request) {
	brand, iys := r.URL.Query().Get("brandCode"), r.URL.Query().Get("iysCode")
	out := []recordJSON{}
	s.locked(func(st *state, _ time.Time) {
		for _, b := range st.order {
			if brand != "" && b.key.brandCode != brand || iys != "" && b.key.iysCode != iys {
				continue
			}
			for _, rec := range b.recs {
				if rec.last >= 0 {
					out = append(out, s.adminRecordJSON(st, b, &b.events[rec.last]))
				}
			}
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// adminCitizen is POST /_sandbox/citizen: a change the citizen made through
// İYS, dated now. A citizen can always opt in or out, also without an
// earlier record; only the status already held is refused (H174).
func (s *Sandbox) adminCitizen(w http.ResponseWriter, r *http.Request) {
	var a adminRecord
	if !readJSON(w, r, maxSmallBody, &a) {
		return
	}
	a.ConsentDate = ""
	var out recordJSON
	var e *apiError
	s.locked(func(st *state, now time.Time) {
		var bk brandKey
		var k recKey
		var c consent.Consent
		if bk, k, c, e = a.change(now, consent.Source.IsCitizen); e != nil {
			return
		}
		b := st.brand(bk, true)
		if h := b.heldFor(k); h != nil && h.Status == c.Status {
			ce := codeError(consent.CodeSameStatus)
			e = &ce
			return
		}
		s.stats.verdict("")
		out = s.adminRecordJSON(st, b, st.record(b, k, c, now, false))
	})
	if e != nil {
		writeErrors(w, http.StatusBadRequest, *e)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// adminOverwrite is PUT /_sandbox/consents: sets a record behind the
// client's back, for drift tests. No rule applies, and the change shows in
// no feed or file; it gets a new transaction id.
func (s *Sandbox) adminOverwrite(w http.ResponseWriter, r *http.Request) {
	var a adminRecord
	if !readJSON(w, r, maxSmallBody, &a) {
		return
	}
	var out recordJSON
	var e *apiError
	anySource := func(src consent.Source) bool { return src.IsBrandSource() || src.IsCitizen() }
	s.locked(func(st *state, now time.Time) {
		var bk brandKey
		var k recKey
		var c consent.Consent
		if bk, k, c, e = a.change(now, anySource); e != nil {
			return
		}
		b := st.brand(bk, true)
		out = s.adminRecordJSON(st, b, st.record(b, k, c, now, true))
	})
	if e != nil {
		writeErrors(w, http.StatusBadRequest, *e)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// adminDelete is DELETE /_sandbox/consents: İYS forgets a record, silently.
func (s *Sandbox) adminDelete(w http.ResponseWriter, r *http.Request) {
	var a adminRecord
	if !readJSON(w, r, maxSmallBody, &a) {
		return
	}
	bk, k, e := a.key()
	if e != nil {
		writeErrors(w, http.StatusBadRequest, *e)
		return
	}
	var out *recordJSON
	s.locked(func(st *state, _ time.Time) {
		b := st.brand(bk, false)
		if ev, ok := b.latest(k); ok {
			v := s.adminRecordJSON(st, b, ev)
			out = &v
			b.forget(ev.rec)
		}
	})
	if out == nil {
		writeErrors(w, http.StatusNotFound, codeError(consent.CodeNotFound))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// adminStats is GET /_sandbox/stats.
func (s *Sandbox) adminStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.stats.snapshot())
}

// adminReset is POST /_sandbox/reset.
func (s *Sandbox) adminReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

type rightsStateJSON struct {
	DenyBrands []string    `json:"denyBrands"`
	Rules      []RightRule `json:"rules"`
}

func (s *Sandbox) rightsState() rightsStateJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := rightsStateJSON{DenyBrands: []string{}, Rules: slices.Clone(s.access.rules)}
	for b := range s.access.deny {
		out.DenyBrands = append(out.DenyBrands, b)
	}
	slices.Sort(out.DenyBrands)
	if out.Rules == nil {
		out.Rules = []RightRule{}
	}
	return out
}

// adminRights is GET /_sandbox/rights.
func (s *Sandbox) adminRights(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.rightsState())
}

// adminAddRight is POST /_sandbox/rights with a RightRule, appended to the
// rules (the last match decides).
func (s *Sandbox) adminAddRight(w http.ResponseWriter, r *http.Request) {
	var rule RightRule
	if !readJSON(w, r, maxSmallBody, &rule) {
		return
	}
	if err := rule.check(); err != nil {
		writeErrors(w, http.StatusBadRequest, apiError{Message: err.Error()})
		return
	}
	s.mu.Lock()
	s.access.rules = append(s.access.rules, rule)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.rightsState())
}

type denyRequest struct {
	BrandCode string `json:"brandCode"`
	Denied    bool   `json:"denied"`
}

// adminDeny is POST /_sandbox/deny: {"brandCode","denied"} ends or restores
// the partnership with a brand, as --deny-brand does.
func (s *Sandbox) adminDeny(w http.ResponseWriter, r *http.Request) {
	var req denyRequest
	if !readJSON(w, r, maxSmallBody, &req) {
		return
	}
	if req.BrandCode == "" {
		writeErrors(w, http.StatusBadRequest, apiError{Message: "brandCode is required", Location: []string{"brandCode"}})
		return
	}
	s.mu.Lock()
	if req.Denied {
		s.access.deny[req.BrandCode] = true
	} else {
		delete(s.access.deny, req.BrandCode)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.rightsState())
}

// adminBrand is POST /_sandbox/brands: registers (or renames, or makes
// master) a brand before its first consent.
func (s *Sandbox) adminBrand(w http.ResponseWriter, r *http.Request) {
	var b Brand
	if !readJSON(w, r, maxSmallBody, &b) {
		return
	}
	if b.IYSCode == "" || b.BrandCode == "" {
		writeErrors(w, http.StatusBadRequest, apiError{Message: "iysCode and brandCode are required", Location: []string{"iysCode", "brandCode"}})
		return
	}
	s.mu.Lock()
	s.st.register(b)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}
