package sandbox

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	e.add(onay(phone(1), start)).want(t, http.StatusBadRequest, "H174")
	sub := e.submit([]wc{onay(phone(2), start), onay(phone(3), start).with("status", "RET")})
	e.poll(sub.RequestID)
	e.poll(sub.RequestID)
	e.send("POST", base+"/consents", "", onay(phone(4), start)).want(t, http.StatusUnauthorized, "H351")
	tok := e.login()
	e.send("POST", "/oauth2/token", "", map[string]string{"refresh_token": tok.RefreshToken, "grant_type": "refresh_token"}).
		want(t, http.StatusOK, "")

	st := e.stats()
	want := map[string]int64{
		"POST /oauth2/token":                                 3,
		"POST " + brandPath + "/consents":                    3,
		"POST " + brandPath + "/consents/request":            1,
		"GET " + brandPath + "/consents/request/{requestId}": 2,
	}
	for k, v := range want {
		if st.Requests[k] != v {
			t.Errorf("requests[%s] = %d, want %d (all: %v)", k, st.Requests[k], v, st.Requests)
		}
	}
	if st.Tokens.Logins != 2 || st.Tokens.Refreshes != 1 || st.Unauthorized != 1 || st.Recorded != 2 ||
		st.Refused["H174"] != 1 || st.Refused["H175"] != 1 || st.Throttled != 0 || st.Faults != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestReset(t *testing.T) {
	e := newEnv(t, Options{})
	sub := e.submit([]wc{onay(phone(1), start)})
	after := e.changes("source=HS").After
	e.send("POST", "/_sandbox/deny", "", map[string]any{"brandCode": "x", "denied": true}).want(t, http.StatusOK, "")

	e.send("POST", "/_sandbox/reset", "", nil).want(t, http.StatusNoContent, "")
	if n := len(e.held()); n != 0 {
		t.Fatalf("%d records after reset", n)
	}
	if st := e.stats(); len(st.Requests) != 0 || st.Tokens.Logins != 0 || st.Recorded != 0 {
		t.Fatalf("stats after reset = %+v", st)
	}
	// The token lives on; the request id and the cursor of before do not.
	e.call("GET", base+"/consents/request/"+sub.RequestID, nil).want(t, http.StatusNotFound, "H404")
	e.call("GET", base+"/consents/changes?source=HS&after="+url.QueryEscape(after), nil).want(t, http.StatusBadRequest, "")
	var rights rightsStateJSON
	e.send("GET", "/_sandbox/rights", "", nil).decode(t, &rights)
	if len(rights.DenyBrands) != 0 {
		t.Fatalf("rights after reset = %+v", rights)
	}
	// The same consent is a first record again.
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	if next := e.submit([]wc{onay(phone(2), start)}); next.RequestID == sub.RequestID {
		t.Fatal("a request id of before the reset was given again")
	}
}

func TestAdminConsentsFilter(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	e.call("POST", "/sps/"+iysCode+"/brands/other/consents", onay(phone(1), start)).want(t, http.StatusOK, "")
	var got []recordJSON
	e.send("GET", "/_sandbox/consents?brandCode=other", "", nil).decode(t, &got)
	if len(got) != 1 || got[0].BrandCode != "other" || got[0].IYSCode != iysCode {
		t.Fatalf("filtered = %+v", got)
	}
	if n := len(e.held()); n != 2 {
		t.Fatalf("all = %d, want 2", n)
	}
}

func TestCitizenChecks(t *testing.T) {
	e := newEnv(t, Options{})
	e.citizen(phone(1), "RET", "IYS_WEB").want(t, http.StatusOK, "")
	e.citizen(phone(1), "RET", "IYS_MOBIL").want(t, http.StatusBadRequest, "H174")
	e.citizen(phone(1), "ONAY", "HS_WEB").want(t, http.StatusBadRequest, "H113") // not a citizen source
	e.citizen(phone(1), "RED", "IYS_WEB").want(t, http.StatusBadRequest, "H112")
	e.citizen("905331234567", "ONAY", "IYS_WEB").want(t, http.StatusBadRequest, "H121")
	held := e.held()
	if len(held) != 1 || held[0].Status != "RET" || held[0].Source != "IYS_WEB" || held[0].ConsentDate != "2025-05-14 10:00:00" {
		t.Fatalf("held = %+v", held)
	}
}

func TestAdminOverwriteAndDelete(t *testing.T) {
	e := newEnv(t, Options{})
	e.add(onay(phone(1), start.Add(-time.Hour))).want(t, http.StatusOK, "")
	key := map[string]string{"iysCode": iysCode, "brandCode": brandCode, "recipient": phone(1),
		"recipientType": "BIREYSEL", "type": "MESAJ"}
	set := map[string]string{"status": "RET", "source": "HS_CAGRI_MERKEZI", "consentDate": "2025-05-14 09:30:00"}
	for k, v := range key {
		set[k] = v
	}
	r := e.send("PUT", "/_sandbox/consents", "", set)
	r.want(t, http.StatusOK, "")
	held := e.held()
	if len(held) != 1 || held[0].Status != "RET" || held[0].Source != "HS_CAGRI_MERKEZI" || held[0].ConsentDate != "2025-05-14 09:30:00" {
		t.Fatalf("held = %+v", held)
	}
	if page := e.changes("source=HS"); len(page.List) != 1 || page.List[0].Status != "ONAY" {
		t.Fatalf("feed = %+v, want only the original ONAY: the overwrite is behind the client's back", page.List)
	}
	// İYS now judges against the overwritten record.
	e.add(onay(phone(1), start.Add(-time.Minute))).want(t, http.StatusOK, "")

	e.send("DELETE", "/_sandbox/consents", "", key).want(t, http.StatusOK, "")
	e.send("DELETE", "/_sandbox/consents", "", key).want(t, http.StatusNotFound, "H404")
	e.call("POST", base+"/consents/status", map[string]string{"recipient": phone(1), "recipientType": "BIREYSEL", "type": "MESAJ"}).
		want(t, http.StatusNotFound, "H404")
	e.add(onay(phone(1), start).with("status", "RET")).want(t, http.StatusBadRequest, "H175") // no earlier record any more
	set["status"] = "MAYBE"
	e.send("PUT", "/_sandbox/consents", "", set).want(t, http.StatusBadRequest, "H112")
}

func TestBrandsAndPartnerRights(t *testing.T) {
	e := newEnv(t, Options{IntegratorCode: "INT1", Brands: []Brand{{IYSCode: iysCode, BrandCode: "main", Name: "Main Brand"}}})
	e.send("POST", "/_sandbox/brands", "", Brand{IYSCode: iysCode, BrandCode: "second", Name: "Second", Master: true}).
		want(t, http.StatusOK, "")
	e.call("POST", "/sps/"+iysCode+"/brands/main/consents", onay(phone(1), start)).want(t, http.StatusOK, "")
	e.call("POST", "/sps/"+iysCode+"/brands/main/consents", onay(phone(2), start)).want(t, http.StatusOK, "")
	e.call("POST", "/sps/999/brands/elsewhere/consents", onay(phone(1), start)).want(t, http.StatusOK, "")

	r := e.call("GET", "/sps/"+iysCode+"/brands", nil)
	r.want(t, http.StatusOK, "")
	var brands []brandJSON
	r.decode(t, &brands)
	if len(brands) != 2 || brands[0].BrandCode != "main" || brands[0].Name != "Main Brand" || brands[0].Master ||
		brands[1].BrandCode != "second" || !brands[1].Master {
		t.Fatalf("brands = %+v", brands)
	}
	if s := brands[0].Stats["MESAJ"]; s.Onay != 2 || s.Ret != 0 || len(brands[0].Stats) != 3 {
		t.Fatalf("stats = %+v", brands[0].Stats)
	}

	r = e.call("GET", "/integrator/INT1/sps/"+iysCode, nil)
	r.want(t, http.StatusOK, "")
	var partner integratorJSON
	r.decode(t, &partner)
	if partner.IntegratorCode != "INT1" || partner.IYSCode != iysCode || len(partner.Brands) != 2 {
		t.Fatalf("partner = %+v", partner)
	}
	for _, b := range partner.Brands {
		for _, rt := range b.Rights {
			if !rt.Read || !rt.Write || !rt.AgreementControl {
				t.Fatalf("default rights = %+v, want everything granted", b.Rights)
			}
		}
	}
	e.call("GET", "/integrator/OTHER/sps/"+iysCode, nil).want(t, http.StatusForbidden, "H245")
}
