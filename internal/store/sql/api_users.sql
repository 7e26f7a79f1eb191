-- iys_tokens and iys_pace: what the processes of one İYS API user share
-- (see migrations/0007). Their row types are tokenRow and paceRow (apiusers.go).

-- name: LockToken
-- Makes the account's row if it is new, so that there is a row to lock.
INSERT INTO iys_tokens (account, sealed) VALUES ($1, '') ON CONFLICT (account) DO NOTHING;

-- name: SealedTokenForUpdate
SELECT sealed FROM iys_tokens WHERE account = $1 FOR UPDATE;

-- name: StoreToken
UPDATE iys_tokens SET sealed = $2, updated_at = now() WHERE account = $1;

-- name: ReserveSlot
-- Takes account $1's next send slot, $2 microseconds after the previous one
-- (or now, when that is past), and says in microseconds how long from now
-- until the slot.
INSERT INTO iys_pace AS p (account, next_at)
VALUES ($1, clock_timestamp() + make_interval(secs => $2::float8 / 1e6))
ON CONFLICT (account) DO UPDATE
SET next_at = greatest(p.next_at, clock_timestamp()) + make_interval(secs => $2::float8 / 1e6)
RETURNING (extract(epoch FROM next_at - clock_timestamp()) * 1e6)::bigint - $2::bigint;
