package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.Load(func(k string) string { return env[k] })
}

func TestDefaults(t *testing.T) {
	cfg, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIURL != "https://api.iys.org.tr" || cfg.Schedule != "0 1 * * *" || cfg.Timezone != "Europe/Istanbul" ||
		cfg.Window != 6*time.Hour || cfg.BatchSize != 1000 || cfg.LogLevel != "info" || cfg.LogFormat != "json" || cfg.MetricsAddr != "" {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("batch_size: 10\nconcurrency: 3\nwindow: 2h\nusername: fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, map[string]string{"IYS_BATCH_SIZE": "20", "IYS_USERNAME": "fromenv"}, "--config", file, "--batch-size", "30")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 30 || cfg.Concurrency != 3 || cfg.Window != 2*time.Hour || cfg.Username != "fromenv" {
		t.Fatalf("got batch %d concurrency %d window %s user %s; want flag 30, file 3, file 2h, env fromenv",
			cfg.BatchSize, cfg.Concurrency, cfg.Window, cfg.Username)
	}
}

func TestInvalidSettingsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"IYS_BATCH_SIZE": "1001"}, nil, "IYS_BATCH_SIZE: must be a whole number from 1 to 1000"},
		{map[string]string{"IYS_BATCH_SIZE": "0"}, nil, "IYS_BATCH_SIZE"},
		{nil, []string{"--batch-size", "x"}, "IYS_BATCH_SIZE (from flag --batch-size)"},
		{map[string]string{"IYS_API_URL": "http://api.iys.org.tr"}, nil, "IYS_API_URL: must use https"},
		{map[string]string{"IYS_API_URL": "ftp://x"}, nil, "IYS_API_URL"},
		{map[string]string{"IYS_SCHEDULE": "every night"}, nil, "IYS_SCHEDULE"},
		{map[string]string{"IYS_TIMEZONE": "Mars/Olympus"}, nil, "IYS_TIMEZONE"},
		{map[string]string{"IYS_WINDOW": "-1h"}, nil, "IYS_WINDOW"},
		{map[string]string{"IYS_CONCURRENCY": "65"}, nil, "IYS_CONCURRENCY"},
		{map[string]string{"IYS_RATE_LIMIT": "-1"}, nil, "IYS_RATE_LIMIT"},
		{map[string]string{"IYS_LOG_LEVEL": "trace"}, nil, "IYS_LOG_LEVEL"},
		{map[string]string{"IYS_LOG_FORMAT": "xml"}, nil, "IYS_LOG_FORMAT"},
		{map[string]string{"IYS_METRICS_ADDR": "9090"}, nil, "IYS_METRICS_ADDR"},
		{map[string]string{"IYS_DATABASE_URL": "mysql://u:s3cret@h/db"}, nil, "IYS_DATABASE_URL"},
	}
	for _, tt := range tests {
		_, err := load(t, tt.env, tt.args...)
		var cerr *Error
		if !errors.As(err, &cerr) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v args %v: err = %v, want one containing %q", tt.env, tt.args, err, tt.want)
		}
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	_, err := load(t, map[string]string{"IYS_DATABASE_URL": "mysql://u:s3cret@h/db"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v: want an error without the password", err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	RegisterFlags(fs)
	if fs.Lookup("password") != nil {
		t.Fatal("a --password flag would show the password in the process list")
	}
}

func TestLoopbackHTTPAccepted(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8089", "http://localhost:8089/", "http://[::1]:8089", "https://api.iys.org.tr"} {
		if err := CheckAPIURL(u); err != nil {
			t.Errorf("CheckAPIURL(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1", "http://api.iys.org.tr", "http://127.0.0.1.example.com"} {
		if err := CheckAPIURL(u); err == nil {
			t.Errorf("CheckAPIURL(%q) accepted plain http to a non-loopback host", u)
		}
	}
}

func TestRequire(t *testing.T) {
	cfg := Default()
	if err := cfg.Require(NeedDatabase); err == nil || !strings.Contains(err.Error(), "IYS_DATABASE_URL") {
		t.Fatalf("Require(database) = %v", err)
	}
	cfg.Username = "u"
	if err := cfg.Require(NeedIYS); err == nil || !strings.Contains(err.Error(), "IYS_PASSWORD") {
		t.Fatalf("Require(iys) = %v", err)
	}
}

func TestUnknownFileKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("batchsize: 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, nil, "--config", file); err == nil || !strings.Contains(err.Error(), `unknown key "batchsize"`) {
		t.Fatalf("err = %v", err)
	}
}

// The example file documents every key, and loads as it is.
func TestExampleFileHasEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "iys-sync.example.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(b), "\n"+s.key()+":") {
			t.Errorf("%s lacks the key %s (%s)", path, s.key(), s.env)
		}
	}
	cfg, err := load(t, nil, "--config", path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("the example's values differ from the defaults:\n%+v\n%+v", cfg, Default())
	}
}

func TestIntakeTokens(t *testing.T) {
	h := strings.Repeat("ab", 32)
	cfg, err := load(t, map[string]string{"IYS_INTAKE_TOKENS": "crm:" + h + " web:" + h + ":600001,600002", "IYS_INTAKE_ADDR": ":8080"})
	if err != nil || len(cfg.IntakeTokens) != 2 || cfg.IntakeAddr != ":8080" {
		t.Fatalf("cfg %+v, %v", cfg.IntakeTokens, err)
	}
	for _, bad := range []string{"crm", "crm:plaintoken", "crm:" + h[:63] + "z", ":" + h} {
		_, err := load(t, map[string]string{"IYS_INTAKE_TOKENS": bad})
		if err == nil || !strings.Contains(err.Error(), "IYS_INTAKE_TOKENS") {
			t.Errorf("%q: err = %v", bad, err)
		}
		if err != nil && len(bad) > 10 && strings.Contains(err.Error(), bad[4:]) {
			t.Errorf("%q: the error echoes the token hash: %v", bad, err)
		}
	}
}
