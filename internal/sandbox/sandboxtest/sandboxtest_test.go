package sandboxtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

const (
	iysCode   = "700001"
	brandCode = "600001"
	phone     = "+905331234562"
)

// clock is Wednesday 2025-05-14 10:00 in Türkiye, standing still.
func clock() time.Time { return time.Date(2025, 5, 14, 10, 0, 0, 0, consent.Istanbul) }

func key(status, source string) Change {
	return Change{IYSCode: iysCode, BrandCode: brandCode, Recipient: phone, RecipientType: "BIREYSEL", Type: "MESAJ",
		Status: status, Source: source}
}

// Every method of Admin against a real sandbox: the client reads each
// answer's fields as the sandbox writes them.
func TestAdminReadsEveryEndpoint(t *testing.T) {
	t.Parallel()
	s := Start(t, sandbox.Options{Now: clock, Brands: []sandbox.Brand{{IYSCode: iysCode, BrandCode: brandCode}}})
	a := s.Admin

	cit := a.Citizen(key("RET", "IYS_WEB"))
	want := Record{IYSCode: iysCode, BrandCode: brandCode, Recipient: phone, RecipientType: "BIREYSEL", Type: "MESAJ",
		Status: "RET", ConsentDate: "2025-05-14 10:00:00", Source: "IYS_WEB", CreationDate: "2025-05-14 10:00:00",
		TransactionID: cit.TransactionID}
	if cit != want || cit.TransactionID == "" {
		t.Fatalf("Citizen = %+v, want %+v with a transaction id", cit, want)
	}
	var refused *Error
	if err := a.Call(http.MethodPost, PathCitizen, key("RET", "IYS_MOBIL"), nil); !errors.As(err, &refused) ||
		refused.Status != http.StatusBadRequest || refused.Code != consent.CodeSameStatus {
		t.Fatalf("the same status again: %v, want HTTP 400 %s", err, consent.CodeSameStatus)
	}
	if recs := a.Consents(""); len(recs) != 1 || recs[0] != cit {
		t.Fatalf("Consents = %+v, want the citizen's record", recs)
	}
	if recs := a.Consents("other"); len(recs) != 0 {
		t.Fatalf("Consents(other) = %+v, want none", recs)
	}
	if held := a.Held(brandCode); len(held) != 1 || held[phone+"/BIREYSEL/MESAJ"] != cit ||
		Key(phone, consent.Bireysel, consent.TypeMesaj) != cit.Key() {
		t.Fatalf("Held = %+v, want the record under %s", held, cit.Key())
	}

	put := key("ONAY", "HS_CAGRI_MERKEZI")
	put.ConsentDate = "2025-05-14 09:30:00"
	if r := a.PutConsent(put); r.Status != "ONAY" || r.Source != "HS_CAGRI_MERKEZI" || r.ConsentDate != put.ConsentDate ||
		r.TransactionID == cit.TransactionID {
		t.Fatalf("PutConsent = %+v", r)
	}
	if r := a.DeleteConsent(key("", "")); r.Status != "ONAY" || len(a.Consents("")) != 0 {
		t.Fatalf("DeleteConsent = %+v, then %d records", r, len(a.Consents("")))
	}

	token(t, s.URL)
	st := a.Stats()
	if st.Requests[RouteToken] != 1 || st.Tokens.Logins != 1 || st.Recorded != 1 || len(st.Refused) != 0 ||
		st.Throttled != 0 || st.ThrottledByCode == nil || st.Faults != 0 || st.FaultsByStatus == nil {
		t.Fatalf("Stats = %+v", st)
	}

	if r := a.AddRight(sandbox.RightRule{BrandCode: brandCode, Type: consent.TypeArama, Right: sandbox.RightWrite}); len(r.Rules) != 1 ||
		r.Rules[0].Type != consent.TypeArama || r.Rules[0].Granted {
		t.Fatalf("AddRight = %+v", r)
	}
	if r := a.Deny(brandCode, true); len(r.DenyBrands) != 1 || r.DenyBrands[0] != brandCode {
		t.Fatalf("Deny = %+v", r)
	}
	if r := a.Rights(); len(r.DenyBrands) != 1 || len(r.Rules) != 1 {
		t.Fatalf("Rights = %+v", r)
	}
	if b := a.AddBrand(sandbox.Brand{IYSCode: iysCode, BrandCode: "second", Name: "Second", Master: true}); b.Name != "Second" || !b.Master {
		t.Fatalf("AddBrand = %+v", b)
	}

	a.Reset()
	if st := a.Stats(); len(st.Requests) != 0 || st.Recorded != 0 {
		t.Fatalf("Stats after Reset = %+v", st)
	}
	if r := a.Rights(); len(r.DenyBrands) != 0 || len(r.Rules) != 0 {
		t.Fatalf("Rights after Reset = %+v", r)
	}
}

// The route constants are the keys the sandbox counts its endpoints under.
func TestRoutes(t *testing.T) {
	t.Parallel()
	began := time.Now()
	s := Start(t, sandbox.Options{Now: func() time.Time { return clock().Add(time.Since(began)) }, AsyncDelay: time.Nanosecond})
	tok := token(t, s.URL)
	base := s.URL + "/sps/" + iysCode + "/brands/" + brandCode + "/consents"
	item := map[string]string{"recipient": phone, "recipientType": "BIREYSEL", "type": "MESAJ", "status": "ONAY",
		"source": "HS_WEB", "consentDate": "2025-05-14 09:00:00"}
	post(t, base, tok, item, nil)
	var sub struct {
		RequestID string `json:"requestId"`
	}
	item["type"] = "ARAMA"
	post(t, base+"/request", tok, []map[string]string{item}, &sub)
	req, _ := http.NewRequest(http.MethodGet, base+"/request/"+sub.RequestID, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	do(t, req, nil)

	st := s.Admin.Stats()
	for _, r := range []string{RouteToken, RouteAddConsent, RouteSubmitBulk, RoutePollBulk} {
		if st.Requests[r] != 1 {
			t.Errorf("Requests[%s] = %d, want 1 (all: %v)", r, st.Requests[r], st.Requests)
		}
	}
	if st.Recorded != 2 {
		t.Errorf("Recorded = %d, want 2", st.Recorded)
	}
}

// Through puts a handler between the test and the same sandbox.
func TestThrough(t *testing.T) {
	t.Parallel()
	s := Start(t, sandbox.Options{Now: clock})
	var seen int
	w := s.Through(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			seen++
			next.ServeHTTP(rw, r)
		})
	})
	w.Admin.Citizen(key("RET", "IYS_WEB"))
	if seen != 1 || w.URL == s.URL || len(s.Admin.Consents(brandCode)) != 1 {
		t.Fatalf("seen %d, URLs %s %s: want one call through the wrapper, to the same sandbox", seen, w.URL, s.URL)
	}
}

func token(t *testing.T, base string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	post(t, base+"/oauth2/token", "", map[string]string{"grant_type": "password",
		"username": sandbox.DefaultUsername, "password": sandbox.DefaultPassword}, &tok)
	return tok.AccessToken
}

func post(t *testing.T, url, token string, body, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	do(t, req, out)
}

func do(t *testing.T, req *http.Request, out any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}
