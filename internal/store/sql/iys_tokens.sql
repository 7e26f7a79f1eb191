-- iys_tokens: the sealed token state of each İYS API user (see
-- migrations/0007). Its row type is tokenRow (tokens.go).

-- name: LockToken
-- Makes the account's row if it is new, so that there is a row to lock.
INSERT INTO iys_tokens (account, sealed) VALUES ($1, '') ON CONFLICT (account) DO NOTHING;

-- name: SealedTokenForUpdate
SELECT sealed FROM iys_tokens WHERE account = $1 FOR UPDATE;

-- name: StoreToken
UPDATE iys_tokens SET sealed = $2, updated_at = now() WHERE account = $1;
