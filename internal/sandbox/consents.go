package sandbox

import (
	"net/http"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// locked runs f on the state at now, once the bulk requests due by now are
// processed: every view and change of the state sees them in time order.
func (s *Sandbox) locked(f func(st *state, now time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.st.catchUp(now, s.stats)
	f(s.st, now)
}

func pathBrand(r *http.Request) brandKey {
	return brandKey{r.PathValue("iysCode"), r.PathValue("brandCode")}
}

type addResponse struct {
	TransactionID string `json:"transactionId"`
	CreationDate  string `json:"creationDate"`
}

// addConsent is POST /consents: one consent, judged and recorded at once.
func (s *Sandbox) addConsent(w http.ResponseWriter, r *http.Request) {
	var wc wireConsent
	if !readJSON(w, r, maxSmallBody, &wc) {
		return
	}
	c, dateCode := wc.parse()
	if code := malformed(c, dateCode); code != "" {
		s.stats.verdict(code)
		writeCode(w, code)
		return
	}
	if e, bad := heldInvalid(c, wc.Recipient, s.opts.InvalidRecipient); bad {
		s.stats.verdict(e.Code)
		writeErrors(w, codeStatus(e.Code), e)
		return
	}
	bk := pathBrand(r)
	var code consent.Code
	var resp addResponse
	permitted := true
	s.locked(func(st *state, now time.Time) {
		if permitted = s.access.allowed(bk, c.Type, RightWrite); !permitted {
			return
		}
		b := st.brand(bk, true)
		k := recKey{c.Recipient, kindOf(c.RecipientType, c.Type)}
		if code = verdict(b.heldFor(k), c, dateCode, consent.NewDate(now)); code != "" {
			return
		}
		e := st.record(b, k, c, now, false)
		resp = addResponse{TransactionID: st.ids.transactionID(e.txn), CreationDate: formatDate(now)}
	})
	switch {
	case !permitted:
		s.forbid(w, "no write permission for "+string(c.Type))
	case code != "":
		s.stats.verdict(code)
		writeCode(w, code)
	default:
		s.stats.verdict("")
		writeJSON(w, http.StatusOK, resp)
	}
}

type statusRequest struct {
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Type          string `json:"type"`
}

// kindFrom checks a queried recipient type and type.
func kindFrom(rtype, typ string) (kind, consent.Code) {
	t, err := consent.ParseType(typ)
	if err != nil {
		return 0, consent.CodeUnknownType
	}
	rt, err := consent.ParseRecipientType(rtype)
	if err != nil {
		return 0, consent.CodeUnknownRecipientType
	}
	return kindOf(rt, t), ""
}

// queryKey is the record key of a queried recipient, normalised as records
// are keyed.
func queryKey(recipient string, k kind) (recKey, consent.Code) {
	if recipient == "" {
		return recKey{}, consent.CodeNoRecipient
	}
	if k.typ() == consent.TypeEposta {
		if e, err := consent.NormalizeEmail(recipient); err == nil {
			recipient = e
		}
	}
	return recKey{recipient, k}, ""
}

// consentStatus is POST /consents/status: the record of one key, or 404.
func (s *Sandbox) consentStatus(w http.ResponseWriter, r *http.Request) {
	var req statusRequest
	if !readJSON(w, r, maxSmallBody, &req) {
		return
	}
	kd, code := kindFrom(req.RecipientType, req.Type)
	if code != "" {
		writeCode(w, code)
		return
	}
	k, code := queryKey(req.Recipient, kd)
	if code != "" {
		writeCode(w, code)
		return
	}
	bk := pathBrand(r)
	var rec *recordJSON
	permitted := true
	s.locked(func(st *state, _ time.Time) {
		if permitted = s.access.allowed(bk, k.kind.typ(), RightRead); !permitted {
			return
		}
		b := st.brand(bk, false)
		if e, ok := b.latest(k); ok {
			v := st.recordJSON(b, e)
			rec = &v
		}
	})
	switch {
	case !permitted:
		s.forbid(w, "no read permission for "+string(k.kind.typ()))
	case rec == nil:
		writeErrors(w, http.StatusNotFound, codeError(consent.CodeNotFound))
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

type statusesRequest struct {
	Recipients []string `json:"recipients"`
}

type statusesResponse struct {
	List []string `json:"list"`
}

// consentStatuses is POST /consents/{recipientType}/status/{type}: which of
// up to 1000 recipients hold ONAY, as sent, in the order sent.
func (s *Sandbox) consentStatuses(w http.ResponseWriter, r *http.Request) {
	var req statusesRequest
	if !readJSON(w, r, maxBulkBody, &req) {
		return
	}
	if len(req.Recipients) > consent.MaxBulkSize {
		writeCode(w, consent.CodeTooMany)
		return
	}
	kd, code := kindFrom(r.PathValue("recipientType"), r.PathValue("type"))
	if code != "" {
		writeCode(w, code)
		return
	}
	bk := pathBrand(r)
	out := statusesResponse{List: []string{}}
	permitted := true
	t := kd.typ()
	s.locked(func(st *state, _ time.Time) {
		if permitted = s.access.allowed(bk, t, RightRead); !permitted {
			return
		}
		b := st.brand(bk, false)
		for _, rc := range req.Recipients {
			k, code := queryKey(rc, kd)
			if e, ok := b.latest(k); code == "" && ok && e.status == statusOnay {
				out.List = append(out.List, rc)
			}
		}
	})
	if !permitted {
		s.forbid(w, "no read permission for "+string(t))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
