package main

import (
	"fmt"
	"testing"

	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// A partner onboarding brands in a row, then pulling and running, logs in
// once: every process takes the token the first one stored, where each
// used to log in and the fourth met İYS's hourly cap (H084).
func TestProcessesShareTheToken(t *testing.T) {
	t.Parallel()
	var brands []sandbox.Brand
	for i := range 8 {
		brands = append(brands, sandbox.Brand{IYSCode: "700001", BrandCode: fmt.Sprint(600010 + i), Name: "Brand"})
	}
	environ := sandboxEnv(t, sandbox.Options{LoginLimit: 3, Brands: brands})
	for _, b := range brands {
		if r := runCmd(t, environ, "install", "--brand-code", b.BrandCode, "--iys-code", b.IYSCode); r.code != 0 {
			t.Fatalf("install %s: exit %d, %s", b.BrandCode, r.code, r.stderr)
		}
	}
	for _, b := range brands[:2] {
		if r := runCmd(t, environ, "pull", "--brand-code", b.BrandCode); r.code != 0 {
			t.Fatalf("pull %s: exit %d, %s", b.BrandCode, r.code, r.stderr)
		}
	}
	if r := runCmd(t, environ, "--run-now"); r.code != 0 {
		t.Fatalf("--run-now: exit %d, %s", r.code, r.stderr)
	}
	if s := sandboxAdmin(t, environ).Stats(); s.Tokens.Logins != 1 {
		t.Fatalf("%d logins for 11 processes, want 1 (tokens %+v)", s.Tokens.Logins, s.Tokens)
	}
}
