package iysclient

import (
	"context"
	"errors"
	"time"
)

// TokenVault keeps an API user's token where every process of the user
// finds it (WithTokenVault). İYS caps password logins per hour, and after
// the cap (H084) refuses every login of the account for about an hour: so
// processes that each log in on their own (an install per brand, a pull, a
// backfill, replicas) soon lock each other out.
type TokenVault interface {
	// Update calls renew with the stored tokens (zero when none), while no
	// other process of the API user can: one renews, the others wait and
	// then find its result. When renew says store, next replaces what is
	// stored, even when renew also returns an error (an H084 pause is
	// stored so that every process honours it). renew's error is returned.
	Update(ctx context.Context, renew func(cur SharedTokens) (next SharedTokens, store bool, err error)) error
}

// SharedTokens is the token state a TokenVault keeps: secrets, to be kept
// sealed.
type SharedTokens struct {
	Access      string
	AccessExp   time.Time // the access token is refused from here on
	RenewAt     time.Time // refresh from here on
	Refresh     string
	RefreshTill time.Time // last moment to try the refresh token
	PausedUntil time.Time // no login before this (H084)
}

// WithTokenVault shares the token through v with the API user's other
// processes. A vault that cannot be reached costs no call: the client
// then renews on its own, and says so in the log.
func WithTokenVault(v TokenVault) Option {
	return func(c *config) error {
		if v == nil {
			return errors.New("with token vault: vault is nil")
		}
		c.vault = v
		return nil
	}
}

// Pacer spaces the bulk requests of all the API user's processes
// (WithPacer): IYS_RATE_LIMIT is one budget per API user at İYS, however
// many replicas send.
type Pacer interface {
	// Reserve takes the user's next send slot, spacing after the previous
	// one, and says how long to wait for it (0 or less: go now).
	Reserve(ctx context.Context, spacing time.Duration) (wait time.Duration, err error)
}

// WithPacer paces bulk requests through p too, after this process's own
// limiter, at the spacing of its current rate. A pacer that cannot be
// reached leaves the process paced alone, and says so in the log.
func WithPacer(p Pacer) Option {
	return func(c *config) error {
		if p == nil {
			return errors.New("with pacer: pacer is nil")
		}
		c.pacer = p
		return nil
	}
}
