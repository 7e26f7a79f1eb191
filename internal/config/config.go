// Package config reads iys-sync's settings from defaults, an optional YAML
// file, the environment and flags, in that order of precedence (flags win),
// and validates every one before any work starts.
package config

import (
	"time"
)

// Config holds every setting of docs/cli.md.
type Config struct {
	DatabaseURL    string
	APIURL         string
	Username       string
	Password       string
	IntegratorCode string
	Schedule       string
	Timezone       string
	Window         time.Duration
	BatchSize      int
	Concurrency    int
	RateLimit      float64
	LogLevel       string
	LogFormat      string
	MetricsAddr    string
	IntakeAddr     string   // the HTTP intake's listener; empty: off
	IntakeTokens   []string // name:sha256-hex-of-token[:brand,brand...], as given; parsed by the intake
	IntakeTLSCert  string   // PEM certificate file of the intake's HTTPS; with IntakeTLSKey; both empty: plain HTTP
	IntakeTLSKey   string   // PEM private key file
	// SourceDatabaseURL is the brand's own database that connectors' source
	// queries read, read-only; empty: no source is read.
	SourceDatabaseURL string
	// SourceStatementTimeout bounds each statement on the brand's database.
	SourceStatementTimeout time.Duration
	// PushgatewayURL is where --run-now and pull push their metrics; empty: nowhere.
	PushgatewayURL string
}

// Default returns docs/cli.md's defaults.
func Default() Config {
	return Config{
		APIURL:      "https://api.iys.org.tr",
		Schedule:    "0 1 * * *",
		Timezone:    "Europe/Istanbul",
		Window:      6 * time.Hour,
		BatchSize:   1000,
		Concurrency: DefaultConcurrency,
		RateLimit:   DefaultRateLimit,
		LogLevel:    "info",
		LogFormat:   "json",

		SourceStatementTimeout: DefaultSourceStatementTimeout,
	}
}

// Defaults the project chose where İYS and docs/cli.md leave room.
const (
	// DefaultConcurrency keeps a few bulk requests polling while the next is sent.
	DefaultConcurrency = 4
	// DefaultRateLimit is one bulk request (up to 1000 consents) a second: İYS
	// publishes no limit, integrations report per-second throttling, and 429s
	// slow the client further on their own.
	DefaultRateLimit = 1.0
	// DefaultSourceStatementTimeout bounds one page of a source query: a
	// page of 5,000 users over a sane query takes seconds.
	DefaultSourceStatementTimeout = 5 * time.Minute
)

// Need names a setting a command cannot do without.
type Need int

// Settings that commands may require.
const (
	NeedDatabase Need = iota
	NeedIYS           // username and password
)

// Require reports the first missing setting among needs, naming the variable.
func (c Config) Require(needs ...Need) error {
	for _, n := range needs {
		switch n {
		case NeedDatabase:
			if c.DatabaseURL == "" {
				return &Error{Var: "IYS_DATABASE_URL", Msg: "is required: a PostgreSQL connection string such as postgres://user@host:5432/db"}
			}
		case NeedIYS:
			if c.Username == "" {
				return &Error{Var: "IYS_USERNAME", Msg: "is required: the İYS API user"}
			}
			if c.Password == "" {
				return &Error{Var: "IYS_PASSWORD", Msg: "is required: the İYS API user's password"}
			}
		}
	}
	return nil
}

// Location returns the schedule's time zone (validated by Load).
func (c Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Error names the variable whose value is missing or wrong. It never holds
// the value of a secret.
type Error struct {
	Var    string // the environment variable
	Origin string // where the bad value came from: "", "flag --x", "config file key x"
	Msg    string
	Usage  bool // a mistake in the command line (a secret given as a flag), not in a value
}

func (e *Error) Error() string {
	if e.Origin == "" {
		return e.Var + ": " + e.Msg
	}
	return e.Var + " (from " + e.Origin + "): " + e.Msg
}
