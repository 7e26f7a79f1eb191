package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/pgtest/storedb"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

func sandboxEnv(t *testing.T, opts sandbox.Options) map[string]string {
	t.Helper()
	opts.Brands = append(opts.Brands, sandbox.Brand{IYSCode: "700001", BrandCode: "600001", Name: "Demo"})
	sb := sandboxtest.Start(t, opts)
	return map[string]string{"IYS_DATABASE_URL": storedb.NewDB(t), "IYS_API_URL": sb.URL,
		"IYS_USERNAME": sandbox.DefaultUsername, "IYS_PASSWORD": sandbox.DefaultPassword, "IYS_INTEGRATOR_CODE": "900001"}
}

func TestInstallAsksIYS(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{DenyBrands: []string{"600001"}})
	r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001")
	if r.code != exitFatal || !strings.Contains(r.stderr, "İş Ortaklığı") || !strings.Contains(r.stderr, "Mutabakat Yönetimi") {
		t.Fatalf("denied brand: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := runCmd(t, environ, "connectors", "--json"); strings.Contains(r.stdout, "600001") {
		t.Fatalf("a refused install registered the connector: %s", r.stdout)
	}
	// --skip-verify installs without asking.
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001", "--skip-verify"); r.code != 0 {
		t.Fatalf("--skip-verify: exit %d, %s", r.code, r.stderr)
	}

	environ = sandboxEnv(t, sandbox.Options{})
	r = runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001")
	if r.code != 0 || !strings.Contains(r.stdout, "checked with İYS") {
		t.Fatalf("granted brand: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Connectors []connectorJSON `json:"connectors"`
	}
	r = runCmd(t, environ, "connectors", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Connectors) != 1 || !out.Connectors[0].Verified {
		t.Fatalf("connectors: %v %s", err, r.stdout)
	}
	delete(environ, "IYS_PASSWORD")
	if r := runCmd(t, environ, "install", "--brand-code", "600002", "--iys-code", "700001"); r.code != exitFatal || !strings.Contains(r.stderr, "IYS_PASSWORD") {
		t.Fatalf("no password: exit %d, %s", r.code, r.stderr)
	}
}

// TestInstallUnknownBrandNamesBothCauses: when İYS lists no such brand, the
// message says the codes may be wrong, or the partnership is not granted
// yet, with the panel's steps; as the brand's own user, that
// IYS_INTEGRATOR_CODE may be missing.
func TestInstallUnknownBrandNamesBothCauses(t *testing.T) {
	t.Parallel()
	environ := sandboxEnv(t, sandbox.Options{})
	r := runCmd(t, environ, "install", "--brand-code", "600999", "--iys-code", "700001")
	for _, w := range []string{"İYS lists no brand 600999 under İYS code 700001 for solution partner 900001", "codes are wrong",
		"--brand-code 600999", "--iys-code 700001", "has not granted İş Ortaklığı rights", "chooses 900001 as its solution partner",
		"turns on MESAJ, ARAMA, EPOSTA", "Mutabakat Yönetimi"} {
		if r.code != exitFatal || !strings.Contains(r.stderr, w) {
			t.Errorf("partner: exit %d, stderr lacks %q:\n%s", r.code, w, r.stderr)
		}
	}
	delete(environ, "IYS_INTEGRATOR_CODE")
	r = runCmd(t, environ, "install", "--brand-code", "600999", "--iys-code", "700001")
	for _, w := range []string{"for this API user", "codes are wrong", "IYS_INTEGRATOR_CODE is not set",
		"İYS panel → İş Ortaklığı → choose the partner → turn on MESAJ, ARAMA, EPOSTA", "Mutabakat Yönetimi"} {
		if r.code != exitFatal || !strings.Contains(r.stderr, w) {
			t.Errorf("own user: exit %d, stderr lacks %q:\n%s", r.code, w, r.stderr)
		}
	}
	environ["IYS_INTEGRATOR_CODE"] = "90/01"
	if r := runCmd(t, environ, "install", "--brand-code", "600001", "--iys-code", "700001"); r.code != exitFatal ||
		!strings.Contains(r.stderr, "IYS_INTEGRATOR_CODE: must be 1 to 20 ASCII letters or digits") {
		t.Errorf("bad integrator code: exit %d, stderr %s", r.code, r.stderr)
	}
}
