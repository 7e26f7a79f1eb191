-- 0007: what every process of one İYS API user shares: its token and its
-- pace. account is a hash of the API URL and username (internal/apiuser),
-- so that the tables name no one.
--
-- İYS caps password logins per hour (H084, then about an hour of refusals
-- for every process of the account). Each process logging in on its own hit
-- that cap when a partner installed brands in a row. The token pair, its
-- expiries and an H084 pause are kept here, sealed (AES-GCM) with a key
-- derived from the API user's password: a reader of the database alone
-- cannot use them.
CREATE TABLE iys_tokens (
    account    text        PRIMARY KEY,
    sealed     bytea       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- IYS_RATE_LIMIT is one budget per API user: replicas serving at once take
-- their bulk requests' send slots here, so that together they stay within it.
CREATE TABLE iys_pace (
    account text        PRIMARY KEY,
    next_at timestamptz NOT NULL -- the first moment the next request may go
);
