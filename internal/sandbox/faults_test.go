package sandbox

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// brandCalls are one call of every path under a brand.
func brandCalls(prefix string) [][3]any {
	return [][3]any{
		{"POST", prefix + "/consents", onay(phone(1), start)},
		{"POST", prefix + "/consents/request", []wc{onay(phone(1), start)}},
		{"GET", prefix + "/consents/request/00000000-0000-0000-0000-000000000000", nil},
		{"POST", prefix + "/consents/status", map[string]string{"recipient": phone(1), "recipientType": "BIREYSEL", "type": "MESAJ"}},
		{"POST", prefix + "/consents/BIREYSEL/status/MESAJ", map[string][]string{"recipients": {phone(1)}}},
		{"GET", prefix + "/consents/changes?source=IYS", nil},
		{"GET", prefix + "/changes/2025-05-13/file", nil},
		{"GET", prefix + "/changes/2025-05-13/recipients/BIREYSEL", nil},
	}
}

func TestDenyBrand(t *testing.T) {
	e := newEnv(t, Options{DenyBrands: []string{brandCode}})
	for _, c := range brandCalls(base) {
		e.call(c[0].(string), c[1].(string), c[2]).want(t, http.StatusForbidden, "H353")
	}
	if n := len(e.held()); n != 0 {
		t.Fatalf("a denied brand got %d records", n)
	}
	// Other brands work; the denied one is not listed.
	e.call("POST", "/sps/"+iysCode+"/brands/other/consents", onay(phone(1), start)).want(t, http.StatusOK, "")
	var brands []brandJSON
	e.call("GET", "/sps/"+iysCode+"/brands", nil).decode(t, &brands)
	if len(brands) != 1 || brands[0].BrandCode != "other" {
		t.Fatalf("brands = %+v", brands)
	}
	// The admin switch restores it.
	e.send("POST", "/_sandbox/deny", "", map[string]any{"brandCode": brandCode, "denied": false}).want(t, http.StatusOK, "")
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	e.send("POST", "/_sandbox/deny", "", map[string]any{"brandCode": brandCode, "denied": true}).want(t, http.StatusOK, "")
	e.add(onay(phone(2), start)).want(t, http.StatusForbidden, "H353")
	if st := e.stats(); st.Forbidden != int64(len(brandCalls(base))+1) {
		t.Fatalf("forbidden = %d", st.Forbidden)
	}
}

func TestRightsPerChannel(t *testing.T) {
	e := newEnv(t, Options{Rights: []RightRule{{BrandCode: brandCode, Type: "ARAMA", Right: RightWrite}}})
	e.add(onay(phone(1), start).with("type", "ARAMA")).want(t, http.StatusForbidden, "H353")
	e.call("POST", base+"/consents/request", []wc{onay(phone(1), start), onay(phone(1), start).with("type", "ARAMA")}).
		want(t, http.StatusForbidden, "H353")
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	e.call("POST", base+"/consents/status", map[string]string{"recipient": phone(1), "recipientType": "BIREYSEL", "type": "ARAMA"}).
		want(t, http.StatusNotFound, "H404") // reading is still allowed

	var partner integratorJSON
	e.call("GET", "/integrator/X/sps/"+iysCode, nil).decode(t, &partner)
	if len(partner.Brands) != 1 || len(partner.Brands[0].Rights) != 3 {
		t.Fatalf("partner rights = %+v", partner)
	}
	for _, r := range partner.Brands[0].Rights {
		if !r.Read || !r.AgreementControl || r.Write != (r.Type != "ARAMA") {
			t.Fatalf("rights = %+v, want all but ARAMA write", partner.Brands[0].Rights)
		}
	}

	// Reconciliation off for every channel closes the feed; for some, hides theirs.
	e.citizen(phone(1), "RET", "IYS_WEB").want(t, http.StatusOK, "")
	e.send("POST", "/_sandbox/rights", "", RightRule{Type: "MESAJ", Right: RightAgreementControl}).want(t, http.StatusOK, "")
	if page := e.changes("source=IYS"); len(page.List) != 0 {
		t.Fatalf("a MESAJ change listed without MESAJ reconciliation: %+v", page.List)
	}
	e.send("POST", "/_sandbox/rights", "", RightRule{Right: RightAgreementControl}).want(t, http.StatusOK, "")
	e.call("GET", base+"/consents/changes?source=IYS", nil).want(t, http.StatusForbidden, "H353")
	e.send("POST", "/_sandbox/rights", "", RightRule{Granted: true}).want(t, http.StatusOK, "")
	if page := e.changes("source=IYS"); len(page.List) != 1 {
		t.Fatalf("rights given back, feed = %+v", page.List)
	}
	e.send("POST", "/_sandbox/rights", "", RightRule{Right: "delete"}).want(t, http.StatusBadRequest, "")
}

func TestBulkRate(t *testing.T) {
	e := newEnv(t, Options{BulkRate: 2})
	items := []wc{onay(phone(1), start)}
	e.call("POST", base+"/consents/request", items).want(t, http.StatusOK, "")
	e.call("POST", base+"/consents/request", []wc{onay(phone(2), start)}).want(t, http.StatusOK, "")
	r := e.call("POST", base+"/consents/request", []wc{onay(phone(3), start)})
	r.want(t, http.StatusTooManyRequests, "")
	if code := r.errs(t)[0].Code; code != "H083" && code != "H124" {
		t.Fatalf("code %s, want H083 or H124", code)
	}
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After = %q, want 1", got)
	}
	// Single consents are not limited; a throttled request had no effect.
	e.add(onay(phone(4), start)).want(t, http.StatusOK, "")
	if n := len(e.held()); n != 3 {
		t.Fatalf("%d records, want 3", n)
	}
	e.clock.Add(500 * time.Millisecond)
	e.call("POST", base+"/consents/request", []wc{onay(phone(3), start)}).want(t, http.StatusOK, "")
	e.call("POST", base+"/consents/request", []wc{onay(phone(5), start)}).want(t, http.StatusTooManyRequests, "")
	if st := e.stats(); st.Throttled != 2 {
		t.Fatalf("throttled = %d, want 2", st.Throttled)
	}
}

func TestFailRate(t *testing.T) {
	e := newEnv(t, Options{FailRate: 0.3, Seed: 42})
	const n = 400
	ok, s500, s503 := 0, 0, 0
	for i := range n {
		r := e.send("POST", base+"/consents", e.token, onay(phone(i), start))
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusInternalServerError:
			s500++
			if r.errs(t)[0].Message == "" {
				t.Fatalf("500 body = %s", r.body)
			}
		case http.StatusServiceUnavailable:
			s503++
			if !strings.Contains(string(r.body), "<html>") {
				t.Fatalf("503 body = %s, want a gateway's HTML", r.body)
			}
		default:
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	share := float64(s500+s503) / n
	if share < 0.22 || share > 0.38 || s500 == 0 || s503 == 0 {
		t.Fatalf("%d×500 + %d×503 of %d: share %.2f, want about 0.3 of both kinds", s500, s503, n, share)
	}
	if held := len(e.held()); held != ok {
		t.Fatalf("%d records for %d successes: a failed request had an effect", held, ok)
	}
	st := e.stats()
	if st.Faults != int64(s500+s503) || st.FaultsByStatus["500"] != int64(s500) {
		t.Fatalf("stats faults = %d %v", st.Faults, st.FaultsByStatus)
	}

}

func TestFailRateSeedReplays(t *testing.T) {
	run := func(seed int64) string {
		e := newEnv(t, Options{FailRate: 0.5, Seed: seed})
		var b strings.Builder
		for i := range 40 {
			b.WriteString(http.StatusText(e.send("POST", base+"/consents", e.token, onay(phone(i), start)).status)[:1])
		}
		return b.String()
	}
	a, b, c := run(7), run(7), run(8)
	if a != b {
		t.Fatalf("seed 7 gave %s then %s", a, b)
	}
	if a == c {
		t.Fatalf("seeds 7 and 8 both gave %s", a)
	}
}

func TestLatency(t *testing.T) {
	e := newEnv(t, Options{Latency: 50 * time.Millisecond})
	began := time.Now()
	e.add(onay(phone(1), start)).want(t, http.StatusOK, "")
	if d := time.Since(began); d < 50*time.Millisecond {
		t.Fatalf("answered in %v, want at least 50ms", d)
	}
	began = time.Now()
	e.held() // admin endpoints are not delayed
	if d := time.Since(began); d >= 50*time.Millisecond {
		t.Fatalf("admin answered in %v", d)
	}
}
