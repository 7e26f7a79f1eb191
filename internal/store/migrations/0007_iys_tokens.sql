-- 0007: one İYS token per API user, shared by every process.
--
-- İYS caps password logins per hour (H084, then about an hour of refusals
-- for every process of the account). Each process logging in on its own hit
-- that cap when a partner installed brands in a row. The token pair, its
-- expiries and an H084 pause are kept here, sealed (AES-GCM) with a key
-- derived from the API user's password: a reader of the database alone
-- cannot use them. account is a hash of the API URL and username, so that
-- the table names no one either.
CREATE TABLE iys_tokens (
    account    text        PRIMARY KEY,
    sealed     bytea       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
