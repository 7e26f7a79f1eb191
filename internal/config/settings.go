package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// setting is one row of the contract's table. One table drives the
// environment, the flags, the YAML keys and the documentation.
type setting struct {
	env    string
	usage  string
	secret bool
	set    func(*Config, string) error
}

// Flag is the flag name of the setting: IYS_BATCH_SIZE → batch-size.
func (s setting) flag() string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.env, "IYS_")), "_", "-")
}

// key is the YAML key: IYS_BATCH_SIZE → batch_size.
func (s setting) key() string { return strings.ToLower(strings.TrimPrefix(s.env, "IYS_")) }

var settings = []setting{
	{env: "IYS_DATABASE_URL", usage: "PostgreSQL connection string", secret: true, set: func(c *Config, v string) error {
		if v == "" {
			c.DatabaseURL = ""
			return nil
		}
		if strings.Contains(v, "://") {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return fmt.Errorf("must be a postgres:// URL or a key=value connection string")
			}
		} else if !strings.Contains(v, "=") {
			return fmt.Errorf("must be a postgres:// URL or a key=value connection string")
		}
		c.DatabaseURL = v
		return nil
	}},
	{env: "IYS_API_URL", usage: "base URL of the İYS API (https; plain http only for loopback)", set: func(c *Config, v string) error {
		if err := CheckAPIURL(v); err != nil {
			return err
		}
		c.APIURL = strings.TrimRight(v, "/")
		return nil
	}},
	{env: "IYS_USERNAME", usage: "İYS API user", set: func(c *Config, v string) error { c.Username = v; return nil }},
	{env: "IYS_PASSWORD", usage: "İYS API user's password (environment or config file only)", secret: true, set: func(c *Config, v string) error { c.Password = v; return nil }},
	{env: "IYS_INTEGRATOR_CODE", usage: "solution partner's integrator code, when acting as a partner", set: func(c *Config, v string) error { c.IntegratorCode = v; return nil }},
	{env: "IYS_SCHEDULE", usage: "cron spec of the nightly job", set: func(c *Config, v string) error {
		if _, err := cron.ParseStandard(v); err != nil {
			return fmt.Errorf("must be a 5-field cron spec such as \"0 1 * * *\": %v", err)
		}
		c.Schedule = v
		return nil
	}},
	{env: "IYS_TIMEZONE", usage: "time zone of the schedule", set: func(c *Config, v string) error {
		if _, err := time.LoadLocation(v); err != nil || v == "" {
			return fmt.Errorf("must be a tz database name such as Europe/Istanbul")
		}
		c.Timezone = v
		return nil
	}},
	{env: "IYS_WINDOW", usage: "how long one nightly run may go on", set: func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a positive duration such as 6h or 90m, got %q", v)
		}
		c.Window = d
		return nil
	}},
	{env: "IYS_BATCH_SIZE", usage: "consents per bulk request (1..1000)", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("must be a whole number from 1 to 1000, got %q", v)
		}
		c.BatchSize = n
		return nil
	}},
	{env: "IYS_CONCURRENCY", usage: "bulk requests in flight at once (1..64)", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return fmt.Errorf("must be a whole number from 1 to 64, got %q", v)
		}
		c.Concurrency = n
		return nil
	}},
	{env: "IYS_RATE_LIMIT", usage: "bulk requests per second sent to İYS (0 = no limit)", set: func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1000 {
			return fmt.Errorf("must be a number from 0 (no limit) to 1000, got %q", v)
		}
		c.RateLimit = f
		return nil
	}},
	{env: "IYS_LOG_LEVEL", usage: "debug, info, warn or error", set: func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("must be debug, info, warn or error, got %q", v)
	}},
	{env: "IYS_LOG_FORMAT", usage: "json or console", set: func(c *Config, v string) error {
		if v != "json" && v != "console" {
			return fmt.Errorf("must be json or console, got %q", v)
		}
		c.LogFormat = v
		return nil
	}},
	{env: "IYS_INTAKE_ADDR", usage: "address of the HTTP intake API (empty disables it)", set: func(c *Config, v string) error {
		if v != "" {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("must be host:port such as :8080, got %q", v)
			}
		}
		c.IntakeAddr = v
		return nil
	}},
	{env: "IYS_INTAKE_TOKENS", usage: "intake bearer tokens: name:sha256hex[:brand,...] separated by spaces", secret: true, set: func(c *Config, v string) error {
		c.IntakeTokens = nil
		for _, f := range strings.Fields(v) {
			parts := strings.Split(f, ":")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || len(parts[1]) != 64 || strings.Trim(strings.ToLower(parts[1]), "0123456789abcdef") != "" {
				return fmt.Errorf("each entry must be name:sha256-hex-of-token or name:sha256-hex:BRAND,BRAND (64 hex digits); the entry named %q is not", parts[0])
			}
			c.IntakeTokens = append(c.IntakeTokens, f)
		}
		return nil
	}},
	{env: "IYS_INTAKE_TLS_CERT", usage: "PEM certificate (chain) file of the intake's HTTPS, with IYS_INTAKE_TLS_KEY; reloaded when it changes (empty: plain HTTP)", set: func(c *Config, v string) error {
		c.IntakeTLSCert = v
		return nil
	}},
	{env: "IYS_INTAKE_TLS_KEY", usage: "PEM private key file of IYS_INTAKE_TLS_CERT", set: func(c *Config, v string) error {
		c.IntakeTLSKey = v
		return nil
	}},
	{env: "IYS_SOURCE_DATABASE_URL", usage: "the brand's own database that connectors' --source-query reads (read-only use; empty: no source)", secret: true, set: func(c *Config, v string) error {
		c.SourceDatabaseURL = v
		return nil
	}},
	{env: "IYS_METRICS_ADDR", usage: "address of /metrics, /healthz and /readyz (empty disables)", set: func(c *Config, v string) error {
		if v != "" {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("must be host:port such as :9090, got %q", v)
			}
		}
		c.MetricsAddr = v
		return nil
	}},
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

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
