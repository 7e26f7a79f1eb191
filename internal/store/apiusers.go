package store

import (
	"context"
	"fmt"
	"time"
)

// tokenRow is an iys_tokens row: the table's row type (see rowTypes).
type tokenRow struct {
	Account   string    `db:"account"`
	Sealed    []byte    `db:"sealed"`
	UpdatedAt time.Time `db:"updated_at"`
}

// Statements of sql/api_users.sql.
var (
	lockToken            = stmt("LockToken")
	sealedTokenForUpdate = stmt("SealedTokenForUpdate")
	storeToken           = stmt("StoreToken")
	reserveSlot          = stmt("ReserveSlot")
)

// paceRow is an iys_pace row: the table's row type (see rowTypes).
type paceRow struct {
	Account string    `db:"account"`
	NextAt  time.Time `db:"next_at"`
}

// ReserveSlot takes the account's next send slot, spacing after the one
// before, and says how long from now until it (0 or less: go now). The
// database's clock decides, so that replicas on hosts whose clocks differ
// still keep the spacing.
func (s *Store) ReserveSlot(ctx context.Context, account string, spacing time.Duration) (time.Duration, error) {
	var us int64
	if err := s.db.GetContext(ctx, &us, reserveSlot, account, spacing.Microseconds()); err != nil {
		return 0, fmt.Errorf("reserve send slot: %w", err)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// tokenLockWait bounds the wait for another process's token renewal: a
// login with its retries can take a while, and giving up early would make
// this process log in too, which is what the shared token is for avoiding.
const tokenLockWait = "SET LOCAL lock_timeout = '5min'"

// UpdateSealedToken runs renew with the account's sealed state (nil when
// none), holding the account's row lock, so that one process at a time
// renews the token while the others wait and then use its result. When
// renew returns store true, what it returns replaces the state. renew's
// error is returned as it is, after the new state (if any) is stored.
func (s *Store) UpdateSealedToken(ctx context.Context, account string,
	renew func(sealed []byte) (next []byte, store bool, err error)) (err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("lock stored token: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var cur []byte
	if _, err := tx.ExecContext(ctx, tokenLockWait); err != nil {
		return fmt.Errorf("lock stored token: %w", err)
	}
	if _, err := tx.ExecContext(ctx, lockToken, account); err != nil {
		return fmt.Errorf("lock stored token: %w", err)
	}
	if err := tx.GetContext(ctx, &cur, sealedTokenForUpdate, account); err != nil {
		return fmt.Errorf("lock stored token: %w", err)
	}
	if len(cur) == 0 {
		cur = nil
	}
	next, keep, renewErr := renew(cur)
	if keep {
		if _, err := tx.ExecContext(ctx, storeToken, account, next); err != nil {
			return fmt.Errorf("store token: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return renewErr
}
