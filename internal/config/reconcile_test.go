package config

import (
	"strings"
	"testing"
)

// IYS_RECONCILE is off, report or repair, report by default.
func TestReconcileSetting(t *testing.T) {
	cfg, err := load(t, map[string]string{})
	if err != nil || cfg.Reconcile != "report" {
		t.Fatalf("default: %q, %v; want report", cfg.Reconcile, err)
	}
	for _, ok := range []string{"off", "report", "repair"} {
		cfg, err := load(t, map[string]string{"IYS_RECONCILE": ok})
		if err != nil || cfg.Reconcile != ok {
			t.Errorf("%q: cfg %q, err %v", ok, cfg.Reconcile, err)
		}
	}
	for _, bad := range []string{"on", "REPAIR", "fix"} {
		_, err := load(t, map[string]string{"IYS_RECONCILE": bad})
		if err == nil || !strings.Contains(err.Error(), "IYS_RECONCILE") || !strings.Contains(err.Error(), "off, report or repair") {
			t.Errorf("%q: err = %v, want a refusal naming the variable and its values", bad, err)
		}
	}
}
