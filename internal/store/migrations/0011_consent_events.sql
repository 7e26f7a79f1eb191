-- 0011: the evidence of every consent. consent_events is append-only: one
-- row per change of a record (a file line, an intake item, a read of the
-- user-table source, a change pulled from İYS, a refresh, a requeue) and
-- one per send and per verdict, written in the transaction of the change,
-- with the values as they were then.
--
-- Each event carries hash = sha256(previous event's hash || its content):
-- a chain per record whose head (seq, hash) is also kept on the record, so
-- that an event edited, deleted or inserted by hand shows (iys-sync
-- verify). The writers compute the hash in SQL with consent_event_hash, in
-- the statement of the change, and set the head on the record in the same
-- UPDATE: the previous hash comes from the locked row, never from a read
-- that a concurrent writer could make stale. Tamper evidence, not proof:
-- someone who knows this function can rebuild a chain.

ALTER TABLE consents ADD COLUMN event_seq int NOT NULL DEFAULT 0 CHECK (event_seq >= 0),
                     ADD COLUMN event_hash bytea,
                     -- Where the record's current value came from: file:NAME:LINE, api:TOKEN:ITEM, ...
                     ADD COLUMN origin text NOT NULL DEFAULT '';

CREATE TABLE consent_events (
    consent_id     bigint      NOT NULL,
    seq            int         NOT NULL CHECK (seq >= 1), -- 1, 2, ... per record, in the order written
    at             timestamptz NOT NULL,
    kind           text        NOT NULL CHECK (kind ~ '^[a-z_]+$'),
    origin         text        NOT NULL,
    -- The record as it was after the event.
    status         text        NOT NULL,
    consent_date   timestamptz NOT NULL,
    source         text        NOT NULL,
    recipient_type text        NOT NULL,
    external_id    text        NOT NULL,
    version        bigint      NOT NULL,
    state          text        NOT NULL,
    -- Where it came from, as far as the kind has it.
    import_id      bigint,      -- the imports row of a file, an intake request, a source read
    request_id     text,        -- the intake request's, or İYS's bulk request's
    subrequest_id  text,
    transaction_id text,        -- İYS's
    creation_date  timestamptz, -- İYS's, for a pulled change
    outcome        text,
    iys_code       text,
    iys_message    text,
    hash           bytea       NOT NULL,
    PRIMARY KEY (consent_id, seq)
);

-- Where retention cut a record's chain (prune): the last event it deleted,
-- so that verify starts the chain after it. Retention cuts a chain only at
-- its start.
CREATE TABLE consent_event_cuts (
    consent_id bigint      PRIMARY KEY,
    seq        int         NOT NULL CHECK (seq >= 1),
    hash       bytea       NOT NULL,
    cut_at     timestamptz NOT NULL
);

-- The hash of an event: sha256 of the previous hash and the event's fields:
-- the fixed-width ones in PostgreSQL's binary form (times as the exact
-- microseconds they hold, whatever the session's time zone; a NULL as -1
-- or -infinity), then the text ones in UTF-8, each ended by the unit
-- separator (a NULL as ''). One SQL expression, so that the planner inlines
-- it into the writers' statements; the binary pieces cost a quarter less
-- than formatting numbers and times as text.
CREATE FUNCTION consent_event_hash(prev bytea, seq int, at timestamptz, kind text, origin text, status text,
                                   consent_date timestamptz, source text, recipient_type text, external_id text,
                                   version bigint, state text, import_id bigint, request_id text,
                                   subrequest_id text, transaction_id text, creation_date timestamptz,
                                   outcome text, iys_code text, iys_message text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT sha256(coalesce(prev, '\x'::bytea) || int4send(seq) || timestamptz_send(at) || timestamptz_send(consent_date)
    || int8send(version) || int8send(coalesce(import_id, -1))
    || timestamptz_send(coalesce(creation_date, '-infinity'::timestamptz))
    || convert_to(kind || chr(31) || origin || chr(31) || status || chr(31) || source || chr(31) || recipient_type
                  || chr(31) || external_id || chr(31) || state || chr(31) || coalesce(request_id, '') || chr(31)
                  || coalesce(subrequest_id, '') || chr(31) || coalesce(transaction_id, '') || chr(31)
                  || coalesce(outcome, '') || chr(31) || coalesce(iys_code, '') || chr(31)
                  || coalesce(iys_message, '') || chr(31), 'UTF8'))
$$;

-- Append-only: nothing updates, deletes or truncates events, except a
-- transaction that says it prunes (SET LOCAL iys_sync.prune = 'on').
CREATE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('iys_sync.prune', true), '') <> 'on' THEN
        RAISE EXCEPTION 'consent_events is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION consent_events_append_only();

-- Records written before the history began get one event each, "baseline",
-- holding the value they had, so that every record's chain starts somewhere.
WITH e AS (
    UPDATE consents c SET event_seq = 1, origin = 'before history',
        event_hash = consent_event_hash(NULL, 1, now(), 'baseline', 'before history', c.status, c.consent_date,
                                        c.source, c.recipient_type, c.external_id, c.version, c.state, NULL, NULL,
                                        NULL, c.transaction_id, NULL, c.outcome, c.iys_code, c.iys_message)
    RETURNING c.*
)
INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                            external_id, version, state, transaction_id, outcome, iys_code, iys_message, hash)
SELECT id, 1, now(), 'baseline', origin, status, consent_date, source, recipient_type, external_id, version, state,
       transaction_id, outcome, iys_code, iys_message, event_hash
FROM e;
