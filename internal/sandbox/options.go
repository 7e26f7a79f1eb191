package sandbox

import (
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Defaults of the `iys-sync sandbox` flags; New applies them to
// zero fields so that an in-process sandbox needs no configuration.
const (
	DefaultAddr       = "127.0.0.1:8089"
	DefaultUsername   = "sandbox"
	DefaultPassword   = "sandbox"
	DefaultTokenTTL   = 2 * time.Hour // İYS's expires_in: 7200 s
	DefaultRefreshTTL = 4 * time.Hour // İYS's refresh_expires_in: 14400 s
)

// Options configure a sandbox. The zero value is a working sandbox on
// DefaultAddr that accepts sandbox/sandbox and injects no faults.
type Options struct {
	Addr     string // listen address, for ListenAndServe
	Username string // the one API user it accepts
	Password string

	// IntegratorCode is the solution partner's code the API user belongs to;
	// GET /integrator/{code}/... answers 403 for another. Empty accepts any.
	IntegratorCode string

	BulkRate   float64       // bulk requests per second accepted before 429 (0 = unlimited)
	LoginLimit int           // password logins per hour before 429 H084 (0 = unlimited)
	Latency    time.Duration // added before every İYS API answer
	FailRate   float64       // share of İYS API requests answered 500 or 503, with no effect
	AsyncDelay time.Duration // how long a bulk request stays enqueue
	TokenTTL   time.Duration // access token lifetime (0 = DefaultTokenTTL)
	RefreshTTL time.Duration // refresh token lifetime (0 = DefaultRefreshTTL)

	// FeedDelay hides changes younger than this from the changes feed. İYS
	// leaves out the latest hour; the sandbox defaults to 0 so that tests and
	// demos see a change at once. Set it to time.Hour to be faithful.
	FeedDelay time.Duration

	// FeedPageCap caps the changes of one feed page whatever the limit asked
	// (0 = no cap beyond the sandbox's 1000), as an İYS that answers shorter
	// pages than asked: a client must follow the cursor, not the length.
	FeedPageCap int

	// FeedEntry, when set, may rewrite each changes-feed entry as it is
	// served: its JSON fields by name, as the sandbox would send them; change
	// a value (a date in another layout, an unknown type) or delete a field.
	// For tests of what İYS might send. It runs outside the sandbox's lock,
	// maybe for several requests at once; the sandbox's state is unchanged.
	FeedEntry func(brandCode, source string, entry map[string]any)

	Seed int64 // seed of faults, ids and result order (0 = time-based; see Sandbox.Seed)

	// DenyBrands are brand codes without any partner permission: every path
	// under them answers 403 H353, as İYS does before the İş Ortaklığı grant.
	DenyBrands []string

	// Rights withdraw (or give back) single rights per brand and channel;
	// by default everything is granted. See RightRule.
	Rights []RightRule

	// Brands are registered at start (and after a reset), so that the brand
	// and partner-rights listings show them before their first consent.
	// Other brands are registered by their first write.
	Brands []Brand

	Now func() time.Time // the clock (nil = time.Now), for tests

	// InvalidRecipient matches recipients İYS holds invalid although they
	// look valid (matched as sent; emails trimmed and lower-cased). A bulk
	// request holding one is refused whole (400, an errors list with each
	// such item's code, message, location, value and index from 1); a
	// single consent is refused (422).
	InvalidRecipient *regexp.Regexp
	// RefusalWithoutIndex leaves the index and the value out of the errors
	// of a bulk request refused whole.
	RefusalWithoutIndex bool
	// ClockSkew is added to the clock (negative: behind the host's), as
	// İYS's own clock may differ from ours.
	ClockSkew time.Duration
}

// Right is one permission a brand grants its solution partner in the İYS
// panel, per channel (consent type).
type Right string

// The rights İYS lists per brand and type.
const (
	RightRead             Right = "read"
	RightWrite            Right = "write"
	RightAgreementControl Right = "agreementControl" // reconciliation (Mutabakat): the changes feed and files
)

// RightRule grants or withdraws rights. An empty IYSCode, BrandCode, Type or
// Right matches any. Rules apply in order and the last one that matches
// decides; with none matching the right is granted.
//
// Needed rights: write (of the consent's type) to add consents; read to ask
// a consent's state; agreementControl of at least one type for the changes
// feed, the daily file and the daily summary, which then list only the
// types with that right. Polling a bulk request needs none.
type RightRule struct {
	IYSCode   string       `json:"iysCode,omitempty"`
	BrandCode string       `json:"brandCode,omitempty"`
	Type      consent.Type `json:"type,omitempty"`
	Right     Right        `json:"right,omitempty"`
	Granted   bool         `json:"granted"`
}

// Brand is a brand known to the sandbox before its first consent.
type Brand struct {
	IYSCode   string `json:"iysCode"`
	BrandCode string `json:"brandCode"`
	Name      string `json:"name,omitempty"`   // shown in listings (default: the brand code)
	Master    bool   `json:"master,omitempty"` // the owner's main brand
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Username == "" {
		o.Username = DefaultUsername
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = DefaultRefreshTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if skew, now := o.ClockSkew, o.Now; skew != 0 {
		o.Now = func() time.Time { return now().Add(skew) }
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	return o, o.check()
}

func (o Options) check() error {
	switch {
	case o.BulkRate < 0 || math.IsNaN(o.BulkRate) || math.IsInf(o.BulkRate, 0):
		return fmt.Errorf("sandbox options: bulk rate %v: want requests per second, 0 or more", o.BulkRate)
	case o.FailRate < 0 || o.FailRate > 1 || math.IsNaN(o.FailRate):
		return fmt.Errorf("sandbox options: fail rate %v: want a share between 0 and 1", o.FailRate)
	case o.LoginLimit < 0:
		return fmt.Errorf("sandbox options: login limit %d: want logins per hour, 0 or more", o.LoginLimit)
	case o.Latency < 0, o.AsyncDelay < 0, o.FeedDelay < 0:
		return fmt.Errorf("sandbox options: latency, async delay and feed delay must not be negative")
	case o.FeedPageCap < 0:
		return fmt.Errorf("sandbox options: feed page cap %d: want changes per page, 0 (no cap) or more", o.FeedPageCap)
	case o.TokenTTL < time.Second || o.RefreshTTL < time.Second:
		return fmt.Errorf("sandbox options: token TTL %v, refresh TTL %v: want at least 1s", o.TokenTTL, o.RefreshTTL)
	}
	for _, r := range o.Rights {
		if err := r.check(); err != nil {
			return fmt.Errorf("sandbox options: %w", err)
		}
	}
	for _, b := range o.Brands {
		if b.IYSCode == "" || b.BrandCode == "" {
			return fmt.Errorf("sandbox options: brand %+v: want both iysCode and brandCode", b)
		}
	}
	return nil
}

func (r RightRule) check() error {
	if r.Type != "" {
		if _, err := consent.ParseType(string(r.Type)); err != nil {
			return fmt.Errorf("right rule: %w", err)
		}
	}
	switch r.Right {
	case "", RightRead, RightWrite, RightAgreementControl:
		return nil
	}
	return fmt.Errorf("right rule: unknown right %q: want read, write or agreementControl", r.Right)
}
