package sandbox

import (
	"net/http"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// heldJSON counts the records a brand holds for one type.
type heldJSON struct {
	Onay int `json:"onay"`
	Ret  int `json:"ret"`
}

type brandJSON struct {
	BrandCode string                    `json:"brandCode"`
	Name      string                    `json:"name"`
	Master    bool                      `json:"master"`
	Stats     map[consent.Type]heldJSON `json:"stats"`
}

// brands is GET /sps/{iysCode}/brands: the owner's brands the partner may
// work for (a brand without partnership is left out), with the records
// held per type.
func (s *Sandbox) brands(w http.ResponseWriter, r *http.Request) {
	iys := r.PathValue("iysCode")
	out := []brandJSON{}
	s.locked(func(st *state, _ time.Time) {
		for _, b := range st.order {
			if b.key.iysCode != iys || s.access.deny[b.key.brandCode] {
				continue
			}
			bj := brandJSON{BrandCode: b.key.brandCode, Name: b.name, Master: b.master, Stats: map[consent.Type]heldJSON{}}
			for i, t := range typeOrder {
				bj.Stats[t] = heldJSON{Onay: b.held[i][statusOnay], Ret: b.held[i][statusRet]}
			}
			out = append(out, bj)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

type partnerBrandJSON struct {
	BrandCode string       `json:"brandCode"`
	Name      string       `json:"name"`
	Rights    []rightsJSON `json:"rights"`
}

type integratorJSON struct {
	IntegratorCode string             `json:"integratorCode"`
	IYSCode        string             `json:"iysCode"`
	Brands         []partnerBrandJSON `json:"brands"`
}

// integrator is GET /integrator/{integratorCode}/sps/{iysCode}: the owner's
// brands with the partner's read, write and agreementControl rights per
// type. Only brands the sandbox knows are listed (Options.Brands, POST
// /_sandbox/brands, or a first write).
func (s *Sandbox) integrator(w http.ResponseWriter, r *http.Request) {
	code, iys := r.PathValue("integratorCode"), r.PathValue("iysCode")
	if s.opts.IntegratorCode != "" && code != s.opts.IntegratorCode {
		s.stats.count(&s.stats.forbidden)
		e := codeError(consent.CodeNotPermitted2)
		e.Message += ": this API user does not belong to integrator " + code
		writeErrors(w, http.StatusForbidden, e)
		return
	}
	out := integratorJSON{IntegratorCode: code, IYSCode: iys, Brands: []partnerBrandJSON{}}
	s.locked(func(st *state, _ time.Time) {
		for _, b := range st.order {
			if b.key.iysCode == iys {
				out.Brands = append(out.Brands, partnerBrandJSON{BrandCode: b.key.brandCode, Name: b.name,
					Rights: s.access.list(b.key)})
			}
		}
	})
	writeJSON(w, http.StatusOK, out)
}
