package iysclient

import (
	"context"
	"net/http"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestBrands(t *testing.T) {
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sps/600/brands" {
			t.Errorf("path = %s", r.URL.Path)
		}
		writeJSON(w, http.StatusOK, []map[string]any{
			{"brandCode": 700, "name": "Ana", "master": true, "stats": map[string]int{"MESAJ": 3}},
			{"brandCode": "701", "name": "Yan", "master": "false"}})
	})
	c := newTestClient(t, f)
	got, err := c.Brands(context.Background(), "600")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].BrandCode != "700" || !got[0].Master || got[1].BrandCode != "701" ||
		got[1].Master || string(got[0].Stats) != `{"MESAJ":3}` {
		t.Errorf("brands = %+v", got)
	}
}

func TestIntegratorRights(t *testing.T) {
	denied := false
	f := newFakeIYS(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/integrator/900/sps/600" {
			t.Errorf("path = %s", r.URL.Path)
		}
		if denied {
			writeError(w, http.StatusForbidden, "", "no rights")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"brands": []any{}})
	})
	c := newTestClient(t, f)
	raw, err := c.IntegratorRights(context.Background(), "900", "600")
	if err != nil || string(raw) != `{"brands":[]}` {
		t.Errorf("rights = %s, %v", raw, err)
	}
	denied = true
	_, err = c.IntegratorRights(context.Background(), "900", "600")
	if ErrorClass(err) != consent.ClassConfiguration {
		t.Errorf("err = %v, want class configuration", err)
	}
}
