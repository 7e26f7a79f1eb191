package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/redact"
	"github.com/iys-sync/iys-sync/internal/source"
	engine "github.com/iys-sync/iys-sync/internal/sync"
)

// every is every group of settings: each setting is a flag.
var every = []Group{Database, IYSAPI, Partner, Logging, Schedule, Timezone, Window, Push, Source, Intake, Metrics, Pushgateway, Takeover, Reconcile, Operator, Retention, Webhook}

func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := RegisterFlags(fs, every...)
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
}

// A secret given as a flag is refused, as a usage error naming the variable
// to use instead, and its value shows nowhere: not in the error, not in the
// flag package's own output, not as an operand.
func TestSecretFlagsRefused(t *testing.T) {
	const pw = "Fl4gSecret-value"
	for _, args := range [][]string{
		{"--database-url", "postgres://app:" + pw + "@db/iys"},
		{"--database-url=postgres://app:" + pw + "@db/iys"},
		{"--source-database-url", "postgres://app:" + pw + "@crm/crm"},
		{"--password", pw},
		{"-password=" + pw},
		{"--intake-tokens", "crm:" + pw},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var out strings.Builder
		fs.SetOutput(&out)
		f := RegisterFlags(fs, Database)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("%v: parse: %v", args, err)
		}
		if len(fs.Args()) != 0 {
			t.Errorf("%v: the value was left as an operand: %v", args, fs.Args())
		}
		_, err := f.Load(func(string) string { return "" })
		var cerr *Error
		if !errors.As(err, &cerr) || !cerr.Usage || !strings.Contains(err.Error(), "IYS_") ||
			!strings.Contains(err.Error(), "environment") {
			t.Errorf("%v: err = %v, want a usage error naming the variable", args, err)
		}
		if err := RefusedFlag(fs); err == nil || err.Error() != cerr.Error() {
			t.Errorf("%v: RefusedFlag = %v", args, err)
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(out.String(), pw) {
			t.Errorf("%v: the secret shows: %v %s", args, err, out.String())
		}
	}
}

// The connection strings are validated; a bad one is named by its variable
// and never echoed, nor any piece of its password.
func TestDatabaseURLsValidated(t *testing.T) {
	const pw = "pa%zzS3cret"
	for _, v := range []string{"IYS_DATABASE_URL", "IYS_SOURCE_DATABASE_URL"} {
		for _, dsn := range []string{
			"postgres://app:" + pw + "@db:5432/iys",
			"postgres://app:pass S3cret@db:5432/iys",
			"postgres://app:S3cretpass@db:notaport/iys",
			"postgres://app:S3cretpass@db:5432/iys?sslmode=S3cretmode",
			"host=db password=pass S3cret word",
			"host=db password='S3cret",
		} {
			_, err := load(t, map[string]string{v: dsn})
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var != v {
				t.Errorf("%s=%q: err = %v, want one naming %s", v, dsn, err, v)
				continue
			}
			for _, frag := range []string{"S3cret", "zz", "notaport", "db:"} {
				if strings.Contains(err.Error(), frag) {
					t.Errorf("%s: the error holds %q: %v", v, frag, err)
				}
			}
		}
		for _, ok := range []string{"postgres://app:p%40ss@db:5432/iys?sslmode=disable", "postgresql://db/iys",
			"host=db user=app password='a b' dbname=iys", "postgres://h1:5432,h2:5433/iys"} {
			if _, err := load(t, map[string]string{v: ok}); err != nil {
				t.Errorf("%s=%q refused: %v", v, ok, err)
			}
		}
	}
}

// Secret settings are handed to the process's scrubber as they are read.
func TestSecretsRegistered(t *testing.T) {
	h := strings.Repeat("cd", 32)
	_, err := load(t, map[string]string{"IYS_PASSWORD": "Reg1steredPW", "IYS_DATABASE_URL": "postgres://app:Reg1steredDB@db/iys",
		"IYS_INTAKE_TOKENS": "crm:" + h})
	if err != nil {
		t.Fatal(err)
	}
	msg := redact.String("pw Reg1steredPW, db Reg1steredDB, hash " + h + ", name crm")
	if msg != "pw ***, db ***, hash ***, name crm" {
		t.Errorf("scrubbed: %q", msg)
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
	// A plain token pasted instead of its hash is refused, named by its
	// position, never echoed.
	const token = "f00dPlainTokenPastedByMistake"
	for _, v := range []string{token, "crm:" + h + " " + token, "crm:" + token} {
		_, err := load(t, map[string]string{"IYS_INTAKE_TOKENS": v})
		if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "entry ") {
			t.Errorf("%q: err = %v, want a refusal by position without the token", v, err)
		}
	}
}

// YAML values are taken as the strings written: YAML 1.1 would read 0123 as
// 83 (octal) and yes as true.
func TestYAMLScalarsAsWritten(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	body := "password: 0123\nusername: yes\nintegrator_code: 0x1F\nbatch_size: 0010\nmetrics_addr: ~\nintake_addr:\nlog_level: \"warn\"\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, nil, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "0123" || cfg.Username != "yes" || cfg.IntegratorCode != "0x1F" || cfg.BatchSize != 10 ||
		cfg.MetricsAddr != "" || cfg.IntakeAddr != "" || cfg.LogLevel != "warn" {
		t.Errorf("password %q username %q integrator %q batch %d metrics %q intake %q level %q",
			cfg.Password, cfg.Username, cfg.IntegratorCode, cfg.BatchSize, cfg.MetricsAddr, cfg.IntakeAddr, cfg.LogLevel)
	}
}

// A config file that does not parse, or holds a list or an alias where a
// value belongs, is refused with its line, never with a piece of a value.
func TestYAMLErrorsShowNoValue(t *testing.T) {
	const secret = "Qz9kS3cretXw7"
	for _, body := range []string{
		"password: \"" + secret + "\n",
		"password: *" + secret + "\n",
		secret + "\n",
		"password: [" + secret + ", x]\n",
		"password: {" + secret + ": 1}\n",
		"password: " + secret + "\npassword: " + secret + "2\n",
		"password: '" + secret + "'x'\n",
		"\tpassword: " + secret + "\n",
	} {
		file := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := load(t, nil, "--config", file)
		if err == nil {
			t.Errorf("%q: accepted", body)
			continue
		}
		if strings.Contains(err.Error(), secret[:5]) || strings.Contains(err.Error(), secret[len(secret)-5:]) {
			t.Errorf("%q: the error shows the value: %v", body, err)
		}
	}
}

// A command takes as flags the settings of the groups it reads, and every
// secret's flag, refused; every setting still comes from the environment
// and the file.
func TestFlagsOfTheGroupsOnly(t *testing.T) {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := RegisterFlags(fs, Database)
	var names []string
	fs.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
	if want := []string{"config", "database-url", "intake-tokens", "password", "source-database-url", "webhook-secret"}; !slices.Equal(names, want) {
		t.Fatalf("flags %v, want %v", names, want)
	}
	for name, want := range map[string][2]bool{"config": {true, false}, "database-url": {true, true},
		"password": {false, true}, "batch-size": {false, false}} {
		if f.Takes(name) != want[0] || f.Refused(name) != want[1] {
			t.Errorf("%s: takes %v refused %v, want %v", name, f.Takes(name), f.Refused(name), want)
		}
	}
	if err := fs.Parse([]string{"--batch-size", "5"}); err == nil {
		t.Fatal("--batch-size accepted by a command that does not read it")
	}

	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("concurrency: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs = flag.NewFlagSet("report", flag.ContinueOnError)
	f = RegisterFlags(fs, Database)
	if err := fs.Parse([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Load(func(k string) string { return map[string]string{"IYS_BATCH_SIZE": "5"}[k] })
	if err != nil || cfg.BatchSize != 5 || cfg.Concurrency != 7 {
		t.Fatalf("batch %d concurrency %d (%v): want 5 from the environment and 7 from the file", cfg.BatchSize, cfg.Concurrency, err)
	}
}

// Every setting is in a group, so that some command takes it as a flag.
func TestEverySettingHasAGroup(t *testing.T) {
	for _, s := range settings {
		if !slices.Contains(every, s.group) {
			t.Errorf("%s is in no group", s.env)
		}
		if (s.get == nil) != s.secret {
			t.Errorf("%s: a setting shows its default unless it is a secret", s.env)
		}
	}
}

// One default per setting: the packages' own, which they also use when
// given nothing.
func TestDefaultsAreThePackagesOwn(t *testing.T) {
	d := Default()
	if d.RateLimit != iysclient.DefaultRateLimit || iysclient.DefaultRateLimit != 1.0 || d.Concurrency != engine.DefaultConcurrency ||
		d.BatchSize != engine.DefaultBatchSize || d.SourceStatementTimeout != source.DefaultStatementTimeout {
		t.Fatalf("defaults %+v", d)
	}
	if got := (setting{get: func(c Config) string { return shortDuration(c.Window) }}).shownDefault(); got != ", default 6h" {
		t.Errorf("window default shown as %q", got)
	}
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", 90 * time.Minute: "1h30m", 6 * time.Hour: "6h", 1500 * time.Millisecond: "1.5s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// docs/cli.md's settings table has a row for every setting: its flag (or
// "refused" for a secret) and its default, as Default gives it.
func TestCLIDocListsEverySetting(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if cells := strings.Split(line, " | "); len(cells) == 4 && strings.HasPrefix(cells[0], "| `IYS_") {
			rows[strings.Trim(cells[0], "| `")] = cells[1:]
		}
	}
	for _, s := range settings {
		row, ok := rows[s.env]
		if !ok {
			t.Errorf("docs/cli.md's settings table has no row for %s", s.env)
			continue
		}
		delete(rows, s.env)
		flagCell, def := row[0], strings.TrimSuffix(row[2], " |")
		if wantFlag := "`--" + s.flag() + "`"; s.secret && !strings.HasPrefix(flagCell, "refused") || !s.secret && flagCell != wantFlag {
			t.Errorf("%s: flag %q, want %q", s.env, flagCell, map[bool]string{true: "refused", false: wantFlag}[s.secret])
		}
		v := ""
		if s.get != nil {
			v = s.get(Default())
		}
		if v == "" && !strings.HasPrefix(def, "none") && !strings.HasPrefix(def, "empty") ||
			v != "" && !strings.HasPrefix(def, "`"+v+"`") {
			t.Errorf("%s: default %q in docs/cli.md, want `%s`", s.env, def, v)
		}
	}
	delete(rows, "IYS_CONFIG")
	for env := range rows {
		t.Errorf("docs/cli.md lists %s, which is no setting", env)
	}
}
