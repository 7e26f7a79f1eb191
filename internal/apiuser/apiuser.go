// Package apiuser is what every process of one İYS API user shares through
// PostgreSQL: one token, sealed (iysclient.TokenVault), and one send pace
// (iysclient.Pacer), so that installs, pulls, backfills and serve replicas
// log in once between them and stay together within IYS_RATE_LIMIT.
//
// The token's sealing key is derived from the API user's password (PBKDF2-SHA256),
// which the database never holds: a reader of the database alone cannot use
// the tokens. A state sealed under another password (the password changed)
// reads as none, and the next login replaces it.
package apiuser

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/iysclient"
)

// Store keeps sealed token states and send slots by account (store.Store).
type Store interface {
	UpdateSealedToken(ctx context.Context, account string,
		renew func(sealed []byte) (next []byte, store bool, err error)) error
	ReserveSlot(ctx context.Context, account string, spacing time.Duration) (time.Duration, error)
}

// iterations of PBKDF2: the key is derived once per process, so it may be
// slow enough to make guessing a weak password from a stolen row costly.
const iterations = 200_000

// version is the first byte of a sealed state: its layout and key scheme.
const version = 1

// Shared is one API user's shared token and pace.
type Shared struct {
	st      Store
	account string
	aead    cipher.AEAD
	log     *zap.Logger
}

// New is what the API user creds at the İYS API apiURL share.
func New(st Store, apiURL string, creds iysclient.Credentials, log *zap.Logger) (*Shared, error) {
	id := sha256.Sum256([]byte("iys-sync account\x00" + apiURL + "\x00" + creds.Username))
	key, err := sealingKey(creds)
	if err != nil {
		return nil, fmt.Errorf("api user: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("api user: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("api user: %w", err)
	}
	return &Shared{st: st, account: hex.EncodeToString(id[:]), aead: aead, log: log}, nil
}

// keys caches derived keys by a hash of the credentials: a process that
// makes several clients of one user (the tests, the demo) derives once.
var keys sync.Map

// sealingKey derives the user's key from the password, salted by the
// username (the account's API URL is bound in as the seal's additional
// data, see seal).
func sealingKey(creds iysclient.Credentials) ([]byte, error) {
	salt := sha256.Sum256([]byte("iys-sync token key\x00" + creds.Username))
	id := sha256.Sum256(append(salt[:], creds.Password...))
	if k, ok := keys.Load(id); ok {
		return k.([]byte), nil
	}
	k, err := pbkdf2.Key(sha256.New, creds.Password, salt[:], iterations, 32)
	if err != nil {
		return nil, err
	}
	keys.Store(id, k)
	return k, nil
}

// Reserve implements iysclient.Pacer.
func (v *Shared) Reserve(ctx context.Context, spacing time.Duration) (time.Duration, error) {
	return v.st.ReserveSlot(ctx, v.account, spacing)
}

// Update implements iysclient.TokenVault.
func (v *Shared) Update(ctx context.Context, renew func(iysclient.SharedTokens) (iysclient.SharedTokens, bool, error)) error {
	return v.st.UpdateSealedToken(ctx, v.account, func(sealed []byte) ([]byte, bool, error) {
		cur, err := v.open(sealed)
		if err != nil {
			v.log.Info("the stored İYS token cannot be opened with this password (was it changed?): it will be replaced", zap.Error(err))
		}
		next, keep, err := renew(cur)
		if !keep {
			return nil, false, err
		}
		b, serr := v.seal(next)
		if serr != nil {
			return nil, false, errors.Join(err, serr)
		}
		return b, true, err
	})
}

// state is the sealed JSON.
type state struct {
	Access      string    `json:"access,omitempty"`
	AccessExp   time.Time `json:"accessExp"`
	RenewAt     time.Time `json:"renewAt"`
	Refresh     string    `json:"refresh,omitempty"`
	RefreshTill time.Time `json:"refreshTill"`
	PausedUntil time.Time `json:"pausedUntil"`
}

func (v *Shared) seal(t iysclient.SharedTokens) ([]byte, error) {
	plain, err := json.Marshal(state(t))
	if err != nil {
		return nil, fmt.Errorf("seal token: %w", err)
	}
	out := make([]byte, 1+v.aead.NonceSize(), 1+v.aead.NonceSize()+len(plain)+v.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal token: %w", err)
	}
	return v.aead.Seal(out, out[1:], plain, []byte(v.account)), nil
}

// open reads a sealed state; none (nil) is the zero state.
func (v *Shared) open(sealed []byte) (iysclient.SharedTokens, error) {
	if len(sealed) == 0 {
		return iysclient.SharedTokens{}, nil
	}
	n := v.aead.NonceSize()
	if sealed[0] != version || len(sealed) < 1+n {
		return iysclient.SharedTokens{}, errors.New("stored token: unknown layout")
	}
	plain, err := v.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(v.account))
	if err != nil {
		return iysclient.SharedTokens{}, errors.New("stored token: not sealed with this password")
	}
	var s state
	if err := json.Unmarshal(plain, &s); err != nil {
		return iysclient.SharedTokens{}, fmt.Errorf("stored token: %w", err)
	}
	return iysclient.SharedTokens(s), nil
}
