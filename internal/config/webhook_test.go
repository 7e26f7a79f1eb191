package config

import (
	"strings"
	"testing"
)

// IYS_WEBHOOK_URL takes https (plain http only for loopback), never
// credentials, a query or a fragment, and is refused without being echoed;
// a URL without IYS_WEBHOOK_SECRET is refused by CheckWebhook.
func TestWebhookURL(t *testing.T) {
	for _, ok := range []string{"", "https://crm.example.com/iys", "http://127.0.0.1:8080/hook", "http://localhost/hook"} {
		cfg, err := load(t, map[string]string{"IYS_WEBHOOK_URL": ok, "IYS_WEBHOOK_SECRET": "k"})
		if err != nil || cfg.WebhookURL != ok || cfg.CheckWebhook() != nil {
			t.Errorf("%q: cfg %q, err %v, check %v", ok, cfg.WebhookURL, err, cfg.CheckWebhook())
		}
	}
	for _, bad := range []string{"crm.example.com", "ftp://crm", "https://", "http://crm.example.com/hook",
		"https://user:S3cretPw@crm.example.com/", "https://crm.example.com/?token=S3cretPw", "https://crm.example.com/#S3cretPw"} {
		_, err := load(t, map[string]string{"IYS_WEBHOOK_URL": bad})
		if err == nil || !strings.Contains(err.Error(), "IYS_WEBHOOK_URL") {
			t.Errorf("%q: err = %v, want a refusal naming the variable", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "S3cretPw") {
			t.Errorf("%q: the error echoes the secret: %v", bad, err)
		}
	}
	cfg, err := load(t, map[string]string{"IYS_WEBHOOK_URL": "https://crm.example.com/iys"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckWebhook(); err == nil || !strings.Contains(err.Error(), "IYS_WEBHOOK_SECRET") {
		t.Errorf("a URL without a secret: %v, want a refusal naming IYS_WEBHOOK_SECRET", err)
	}
}
