// Package config reads iys-sync's settings from defaults, an optional YAML
// file, the environment and flags, in that order of precedence (flags win),
// and validates every one before any work starts.
package config

import (
	"time"

	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/source"
	engine "github.com/iys-sync/iys-sync/internal/sync"
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
	// TakeoverEvery is how often serve looks, within a night's window, for
	// connectors left unfinished that no run holds; 0: at start only.
	TakeoverEvery time.Duration
	BatchSize     int
	Concurrency   int
	RateLimit     float64
	LogLevel      string
	LogFormat     string
	MetricsAddr   string
	IntakeAddr    string   // the HTTP intake's listener; empty: off
	IntakeTokens  []string // name:sha256-hex-of-token[:brand,brand...], as given; parsed by the intake
	IntakeTLSCert string   // PEM certificate file of the intake's HTTPS; with IntakeTLSKey; both empty: plain HTTP
	IntakeTLSKey  string   // PEM private key file
	// PermissionsAllowPending makes the intake's permission check allow an
	// ONAY not yet in İYS.
	PermissionsAllowPending bool
	// SourceDatabaseURL is the brand's own database that connectors' source
	// queries read, read-only; empty: no source is read.
	SourceDatabaseURL string
	// SourceStatementTimeout bounds each statement on the brand's database.
	SourceStatementTimeout time.Duration
	// PushgatewayURL is where --run-now and pull push their metrics; empty: nowhere.
	PushgatewayURL string
	// WebhookURL is where serve POSTs the changes feed; empty: no webhooks.
	WebhookURL string
	// WebhookSecret keys the webhooks' HMAC-SHA256 signature.
	WebhookSecret string
	// Reconcile is what serve does after the nightly push: off, report or
	// repair the previous Türkiye day's drift (reconcile.Mode).
	Reconcile string
	// Operator names who redrives records; empty: $USER.
	Operator string
	// Retention is how long a record's history is kept after the record
	// stops being valid (a RET): prune and forget keep it that long.
	Retention time.Duration
}

// Default returns docs/cli.md's defaults. A setting that a package also
// defaults on its own (the engine's batch size and concurrency, the
// client's rate, the source's statement timeout) takes that package's
// default: one value, in one place.
func Default() Config {
	return Config{
		APIURL:        "https://api.iys.org.tr",
		Schedule:      "0 1 * * *",
		Timezone:      "Europe/Istanbul",
		Window:        6 * time.Hour,
		TakeoverEvery: time.Minute,
		BatchSize:     engine.DefaultBatchSize,
		Concurrency:   engine.DefaultConcurrency,
		RateLimit:     iysclient.DefaultRateLimit,
		LogLevel:      "info",
		LogFormat:     "json",
		Reconcile:     "report",

		SourceStatementTimeout: source.DefaultStatementTimeout,
		Retention:              DefaultRetention,
	}
}

// Group names settings that go together. A command takes as flags the
// settings of the groups it reads; every command reads every setting from
// the environment and the --config file, and ignores those it does not use.
type Group int

// The groups of settings.
const (
	Database    Group = iota + 1 // IYS_DATABASE_URL
	IYSAPI                       // IYS_API_URL, IYS_USERNAME, IYS_PASSWORD
	Partner                      // IYS_INTEGRATOR_CODE
	Logging                      // IYS_LOG_LEVEL, IYS_LOG_FORMAT
	Schedule                     // IYS_SCHEDULE
	Timezone                     // IYS_TIMEZONE
	Window                       // IYS_WINDOW
	Push                         // IYS_BATCH_SIZE, IYS_CONCURRENCY, IYS_RATE_LIMIT
	Source                       // IYS_SOURCE_DATABASE_URL, IYS_SOURCE_STATEMENT_TIMEOUT
	Intake                       // IYS_INTAKE_ADDR, IYS_INTAKE_TOKENS, IYS_INTAKE_TLS_CERT, IYS_INTAKE_TLS_KEY, IYS_PERMISSIONS_ALLOW_PENDING
	Metrics                      // IYS_METRICS_ADDR
	Pushgateway                  // IYS_PUSHGATEWAY_URL
	Takeover                     // IYS_TAKEOVER_EVERY
	Reconcile                    // IYS_RECONCILE
	Operator                     // IYS_OPERATOR
	Retention                    // IYS_RETENTION
	Webhook                      // IYS_WEBHOOK_URL, IYS_WEBHOOK_SECRET
)

// DefaultRetention is IYS_RETENTION's default: three years (of 365 days),
// the period we read in the commercial-messages regulation for consent
// records after the consent ends; each brand should confirm it (README).
const DefaultRetention = 3 * 365 * 24 * time.Hour

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

// CheckWebhook reports a webhook URL set without its secret: every
// delivery is signed, and an unsigned one would be taken by anyone.
func (c Config) CheckWebhook() error {
	if c.WebhookURL != "" && c.WebhookSecret == "" {
		return &Error{Var: "IYS_WEBHOOK_SECRET", Msg: "is required with IYS_WEBHOOK_URL: the key the receiver checks each delivery's signature with"}
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
