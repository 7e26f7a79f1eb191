package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/robfig/cron/v3"

	"github.com/iys-sync/iys-sync/internal/redact"
)

// setting is one row of docs/cli.md's table. One table drives the
// environment, the flags, the YAML keys and the documentation.
type setting struct {
	env    string
	group  Group // a command takes the setting as a flag when it reads the group
	usage  string
	secret bool // never a flag; registered with the process's scrubber
	dsn    bool // a connection string: its password is the secret
	set    func(*Config, string) error
	get    func(Config) string // the value as written; nil for a secret
}

// Flag is the flag name of the setting: IYS_BATCH_SIZE → batch-size.
func (s setting) flag() string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.env, "IYS_")), "_", "-")
}

// key is the YAML key: IYS_BATCH_SIZE → batch_size.
func (s setting) key() string { return strings.ToLower(strings.TrimPrefix(s.env, "IYS_")) }

var settings = []setting{
	{env: "IYS_DATABASE_URL", group: Database, usage: "PostgreSQL connection string", secret: true, dsn: true, set: func(c *Config, v string) error {
		if err := checkDSN(v); err != nil {
			return err
		}
		c.DatabaseURL = v
		return nil
	}},
	{env: "IYS_API_URL", group: IYSAPI, usage: "base URL of the İYS API (https; plain http only for loopback)", get: func(c Config) string { return c.APIURL },
		set: func(c *Config, v string) error {
			if err := CheckAPIURL(v); err != nil {
				return err
			}
			c.APIURL = strings.TrimRight(v, "/")
			return nil
		}},
	{env: "IYS_USERNAME", group: IYSAPI, usage: "İYS API user", get: func(c Config) string { return c.Username },
		set: func(c *Config, v string) error { c.Username = v; return nil }},
	{env: "IYS_PASSWORD", group: IYSAPI, usage: "İYS API user's password (environment or config file only)", secret: true, set: func(c *Config, v string) error { c.Password = v; return nil }},
	{env: "IYS_INTEGRATOR_CODE", group: Partner, usage: "solution partner's integrator code, when acting as a partner", get: func(c Config) string { return c.IntegratorCode },
		set: func(c *Config, v string) error { c.IntegratorCode = v; return nil }},
	{env: "IYS_SCHEDULE", group: Schedule, usage: "cron spec of the nightly job", get: func(c Config) string { return c.Schedule },
		set: func(c *Config, v string) error {
			if _, err := cron.ParseStandard(v); err != nil {
				return fmt.Errorf("must be a 5-field cron spec such as \"0 1 * * *\": %v", err)
			}
			c.Schedule = v
			return nil
		}},
	{env: "IYS_TIMEZONE", group: Timezone, usage: "time zone of the schedule", get: func(c Config) string { return c.Timezone },
		set: func(c *Config, v string) error {
			if _, err := time.LoadLocation(v); err != nil || v == "" {
				return fmt.Errorf("must be a tz database name such as Europe/Istanbul")
			}
			c.Timezone = v
			return nil
		}},
	{env: "IYS_WINDOW", group: Window, usage: "how long one nightly run may go on", get: func(c Config) string { return shortDuration(c.Window) },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("must be a positive duration such as 6h or 90m, got %q", v)
			}
			c.Window = d
			return nil
		}},
	{env: "IYS_TAKEOVER_EVERY", group: Takeover, usage: "how often serve looks, within the night's window, for connectors left unfinished that no replica runs (one died, or this one started late), and takes them over; 0: only at start",
		get: func(c Config) string { return shortDuration(c.TakeoverEvery) },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (d > 0 && d < time.Second) {
				return fmt.Errorf("must be 0 or a duration of 1s or more such as 1m, got %q", v)
			}
			c.TakeoverEvery = d
			return nil
		}},
	{env: "IYS_BATCH_SIZE", group: Push, usage: "consents per bulk request (1..1000)", get: func(c Config) string { return strconv.Itoa(c.BatchSize) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return fmt.Errorf("must be a whole number from 1 to 1000, got %q", v)
			}
			c.BatchSize = n
			return nil
		}},
	{env: "IYS_CONCURRENCY", group: Push, usage: "bulk requests in flight at once (1..64)", get: func(c Config) string { return strconv.Itoa(c.Concurrency) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				return fmt.Errorf("must be a whole number from 1 to 64, got %q", v)
			}
			c.Concurrency = n
			return nil
		}},
	{env: "IYS_RATE_LIMIT", group: Push, usage: "bulk requests per second sent to İYS (0 = no limit)", get: func(c Config) string { return strconv.FormatFloat(c.RateLimit, 'g', -1, 64) },
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1000 {
				return fmt.Errorf("must be a number from 0 (no limit) to 1000, got %q", v)
			}
			c.RateLimit = f
			return nil
		}},
	{env: "IYS_LOG_LEVEL", group: Logging, usage: "debug, info, warn or error", get: func(c Config) string { return c.LogLevel },
		set: func(c *Config, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return fmt.Errorf("must be debug, info, warn or error, got %q", v)
		}},
	{env: "IYS_LOG_FORMAT", group: Logging, usage: "json or console", get: func(c Config) string { return c.LogFormat },
		set: func(c *Config, v string) error {
			if v != "json" && v != "console" {
				return fmt.Errorf("must be json or console, got %q", v)
			}
			c.LogFormat = v
			return nil
		}},
	{env: "IYS_INTAKE_ADDR", group: Intake, usage: "address of the HTTP intake API (empty disables it)", get: func(c Config) string { return c.IntakeAddr },
		set: func(c *Config, v string) error {
			if v != "" {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("must be host:port such as :8080, got %q", v)
				}
			}
			c.IntakeAddr = v
			return nil
		}},
	{env: "IYS_INTAKE_TOKENS", group: Intake, usage: "intake bearer tokens: name:sha256hex[:brand,...] separated by spaces", secret: true, set: func(c *Config, v string) error {
		c.IntakeTokens = nil
		for i, f := range strings.Fields(v) {
			parts := strings.Split(f, ":")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || len(parts[1]) != 64 || strings.Trim(strings.ToLower(parts[1]), "0123456789abcdef") != "" {
				// Named by position only: an entry that is not name:hash may
				// be a token pasted in plain.
				return fmt.Errorf("entry %d of %d is not name:sha256-hex-of-token or name:sha256-hex:BRAND,BRAND (a name, then 64 hex digits); "+
					"give the token's SHA-256, never the token (printf %%s \"$TOKEN\" | sha256sum); the entry is not shown: it may be a token",
					i+1, len(strings.Fields(v)))
			}
			c.IntakeTokens = append(c.IntakeTokens, f)
		}
		return nil
	}},
	{env: "IYS_INTAKE_TLS_CERT", group: Intake, usage: "PEM certificate (chain) file of the intake's HTTPS, with IYS_INTAKE_TLS_KEY; reloaded when it changes (empty: plain HTTP)", get: func(c Config) string { return c.IntakeTLSCert },
		set: func(c *Config, v string) error {
			c.IntakeTLSCert = v
			return nil
		}},
	{env: "IYS_INTAKE_TLS_KEY", group: Intake, usage: "PEM private key file of IYS_INTAKE_TLS_CERT", get: func(c Config) string { return c.IntakeTLSKey },
		set: func(c *Config, v string) error {
			c.IntakeTLSKey = v
			return nil
		}},
	{env: "IYS_PERMISSIONS_ALLOW_PENDING", group: Intake, usage: "permission checks allow an ONAY not yet in İYS (pending or in flight): true or false",
		get: func(c Config) string { return strconv.FormatBool(c.PermissionsAllowPending) },
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("must be true or false, got %q", v)
			}
			c.PermissionsAllowPending = b
			return nil
		}},
	{env: "IYS_SOURCE_DATABASE_URL", group: Source, usage: "the brand's own database that connectors' --source-query reads (read-only use; empty: no source)", secret: true, dsn: true, set: func(c *Config, v string) error {
		if err := checkDSN(v); err != nil {
			return err
		}
		c.SourceDatabaseURL = v
		return nil
	}},
	{env: "IYS_SOURCE_STATEMENT_TIMEOUT", group: Source, usage: "longest one statement of a source query (a page) may run on the brand's database", get: func(c Config) string { return shortDuration(c.SourceStatementTimeout) },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > 24*time.Hour {
				return fmt.Errorf("must be a duration from 1s to 24h such as 5m, got %q", v)
			}
			c.SourceStatementTimeout = d
			return nil
		}},
	{env: "IYS_RETENTION", group: Retention, usage: "how long a record's history is kept after it stops being valid (a RET), in days (1095d) or as a duration", get: func(c Config) string { return days(c.Retention) },
		set: func(c *Config, v string) error {
			d, err := parseDays(v)
			if err != nil || d < 24*time.Hour {
				return fmt.Errorf("must be at least a day, in days such as 1095d or as a duration such as 26280h, got %q", v)
			}
			c.Retention = d
			return nil
		}},
	{env: "IYS_METRICS_ADDR", group: Metrics, usage: "address of /metrics, /healthz and /readyz (empty disables)", get: func(c Config) string { return c.MetricsAddr },
		set: func(c *Config, v string) error {
			if v != "" {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("must be host:port such as :9090, got %q", v)
				}
			}
			c.MetricsAddr = v
			return nil
		}},
	{env: "IYS_PUSHGATEWAY_URL", group: Pushgateway, usage: "Prometheus Pushgateway that --run-now and pull push their metrics to when they end (empty: none)", get: func(c Config) string { return c.PushgatewayURL },
		set: func(c *Config, v string) error {
			if v != "" {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
					return fmt.Errorf("must be an http(s) URL without credentials, query or fragment, such as http://pushgateway:9091")
				}
			}
			c.PushgatewayURL = v
			return nil
		}},
	{env: "IYS_WEBHOOK_URL", group: Webhook, usage: "where serve POSTs the changes feed, signed with IYS_WEBHOOK_SECRET (https; plain http only for loopback; empty: no webhooks)", get: func(c Config) string { return c.WebhookURL },
		set: func(c *Config, v string) error {
			if v != "" {
				if err := checkWebhookURL(v); err != nil {
					return err
				}
			}
			c.WebhookURL = v
			return nil
		}},
	{env: "IYS_WEBHOOK_SECRET", group: Webhook, usage: "key of the webhooks' HMAC-SHA256 signature (environment or config file only)", secret: true,
		set: func(c *Config, v string) error { c.WebhookSecret = v; return nil }},
	{env: "IYS_RECONCILE", group: Reconcile, usage: "after the nightly push, serve reconciles the previous Türkiye day: off, report (drift to the log, status and metrics) or repair (and brought to İYS's state)", get: func(c Config) string { return c.Reconcile },
		set: func(c *Config, v string) error {
			switch v {
			case "off", "report", "repair":
				c.Reconcile = v
				return nil
			}
			return fmt.Errorf("must be off, report or repair, got %q", v)
		}},
	{env: "IYS_OPERATOR", group: Operator, usage: "who redrives records, as the redrive's record names them (empty: $USER)", get: func(c Config) string { return c.Operator },
		set: func(c *Config, v string) error { c.Operator = v; return nil }},
}

// shortDuration writes d as it is usually written: 6h, not 6h0m0s.
// parseDays reads Nd (N days) or a Go duration.
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		k, err := strconv.Atoi(n)
		if err != nil || k < 0 || k > 100*365 {
			return 0, fmt.Errorf("days %q", n)
		}
		return time.Duration(k) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// days writes a whole number of days as Nd, anything else as a duration.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return shortDuration(d)
}

func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// checkDSN validates a PostgreSQL connection string as the driver will read
// it. Its messages never quote the value, nor the parsers' messages (Go's URL
// parser quotes the whole URL, the driver pieces of it).
func checkDSN(v string) error {
	if v == "" {
		return nil
	}
	const notShown = " (the value is not shown: it may hold a password)"
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil {
			return errors.New("is not a valid URL" + notShown + ": percent-encode the special characters of the user and the password " +
				"(%25 for %, %20 for a space, %40 for @, %2F for /, %3A for :, %23 for #, %3F for ?) and give the port as digits, " +
				"e.g. postgres://user:p%40ss@host:5432/dbname")
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return errors.New("must be a postgres:// URL or a key=value connection string" + notShown)
		}
	} else if _, ok := redact.KeyValues(v); !ok {
		return errors.New("must be a postgres:// URL or a key=value connection string (host=db port=5432 user=app password='...' dbname=x; " +
			"a value with spaces in single quotes)" + notShown)
	}
	if _, err := pq.NewConfig(v); err != nil {
		return errors.New("is not a connection string the PostgreSQL driver accepts" + notShown + ": check the port, sslmode and the other parameters")
	}
	return nil
}

// CheckAPIURL accepts https, and plain http only for loopback hosts.
func CheckAPIURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return fmt.Errorf("must be an absolute URL such as https://api.iys.org.tr")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must use https: plain http is accepted only for loopback hosts (the sandbox)")
	}
	return fmt.Errorf("must be an https:// URL")
}

// checkWebhookURL accepts what CheckAPIURL does, without credentials, query
// or fragment: a token in the URL would show wherever the URL is logged.
func checkWebhookURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must be an https:// URL without credentials, query or fragment, such as https://crm.example.com/iys-sync (the value is not shown)")
	}
	if err := CheckAPIURL(v); err != nil {
		return fmt.Errorf("must use https (plain http only for loopback hosts), such as https://crm.example.com/iys-sync")
	}
	return nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
