// Package tokenvault keeps an İYS API user's token in PostgreSQL, sealed,
// so that every process of the user shares one token (iysclient.TokenVault).
//
// The sealing key is derived from the API user's password (PBKDF2-SHA256),
// which the database never holds: a reader of the database alone cannot use
// the tokens. A state sealed under another password (the password changed)
// reads as none, and the next login replaces it.
package tokenvault

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
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/iysclient"
)

// Store holds sealed states by account under a lock (store.Store).
type Store interface {
	UpdateSealedToken(ctx context.Context, account string,
		renew func(sealed []byte) (next []byte, store bool, err error)) error
}

// iterations of PBKDF2: the key is derived once per process, so it may be
// slow enough to make guessing a weak password from a stolen row costly.
const iterations = 200_000

// version is the first byte of a sealed state: its layout and key scheme.
const version = 1

// Vault is one API user's shared token.
type Vault struct {
	st      Store
	account string
	aead    cipher.AEAD
	log     *zap.Logger
}

// New is the vault of the API user creds at the İYS API apiURL.
func New(st Store, apiURL string, creds iysclient.Credentials, log *zap.Logger) (*Vault, error) {
	id := sha256.Sum256([]byte("iys-sync account\x00" + apiURL + "\x00" + creds.Username))
	key, err := pbkdf2.Key(sha256.New, creds.Password, id[:], iterations, 32)
	if err != nil {
		return nil, fmt.Errorf("token vault: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("token vault: %w", err)
	}
	return &Vault{st: st, account: hex.EncodeToString(id[:]), aead: aead, log: log}, nil
}

// Update implements iysclient.TokenVault.
func (v *Vault) Update(ctx context.Context, renew func(iysclient.SharedTokens) (iysclient.SharedTokens, bool, error)) error {
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

func (v *Vault) seal(t iysclient.SharedTokens) ([]byte, error) {
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
func (v *Vault) open(sealed []byte) (iysclient.SharedTokens, error) {
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
