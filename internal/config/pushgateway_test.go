package config

import (
	"strings"
	"testing"
)

// IYS_PUSHGATEWAY_URL takes an http(s) URL; a URL with credentials is
// refused without being echoed (its password would show).
func TestPushgatewayURL(t *testing.T) {
	for _, ok := range []string{"", "http://pushgateway:9091", "https://pgw.example.com/prefix/"} {
		cfg, err := load(t, map[string]string{"IYS_PUSHGATEWAY_URL": ok})
		if err != nil || cfg.PushgatewayURL != ok {
			t.Errorf("%q: cfg %q, err %v", ok, cfg.PushgatewayURL, err)
		}
	}
	for _, bad := range []string{"pushgateway:9091", "ftp://pgw", "http://", "http://user:S3cretPw@pgw:9091", "http://pgw:9091?x=1", "http://pgw#f"} {
		_, err := load(t, map[string]string{"IYS_PUSHGATEWAY_URL": bad})
		if err == nil || !strings.Contains(err.Error(), "IYS_PUSHGATEWAY_URL") {
			t.Errorf("%q: err = %v, want a refusal naming the variable", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "S3cretPw") {
			t.Errorf("%q: the error echoes the password: %v", bad, err)
		}
	}
}
