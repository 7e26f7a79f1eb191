-- 0001: connectors, their consent records, and the audit of imported files.
-- Enumerations are CHECK constraints on text: readable in psql, and a wrong
-- value fails at the statement that writes it.

CREATE TABLE connectors (
    id             bigserial PRIMARY KEY,
    brand_code     text NOT NULL UNIQUE CHECK (brand_code <> ''),
    iys_code       text NOT NULL CHECK (iys_code <> ''),
    channels       text[] NOT NULL
                   CHECK (cardinality(channels) > 0 AND channels <@ ARRAY['MESAJ', 'ARAMA', 'EPOSTA']),
    recipient_type text NOT NULL DEFAULT 'BIREYSEL' CHECK (recipient_type IN ('BIREYSEL', 'TACIR')),
    default_source text NOT NULL DEFAULT 'HS_WEB' CHECK (default_source LIKE 'HS\_%'),
    state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    installed_at   timestamptz NOT NULL DEFAULT now(),
    first_sync_at  timestamptz NOT NULL,
    verified_at    timestamptz
);

CREATE TABLE consents (
    id              bigserial PRIMARY KEY,
    -- No foreign key, on purpose: its per-row check doubled the cost of a
    -- large import (2.2 s of CPU per million rows against 3.9 s for a bare COPY).
    -- Writers lock the connector row FOR KEY SHARE instead, as that check
    -- would, and connectors_restrict_delete below keeps the other direction.
    connector_id    bigint NOT NULL,
    recipient       text NOT NULL CHECK (recipient <> ''),
    recipient_type  text NOT NULL CHECK (recipient_type IN ('BIREYSEL', 'TACIR')),
    type            text NOT NULL CHECK (type IN ('MESAJ', 'ARAMA', 'EPOSTA')),
    status          text NOT NULL CHECK (status IN ('ONAY', 'RET')),
    consent_date    timestamptz NOT NULL,
    source          text NOT NULL CHECK (source <> ''), -- HS_* from brands, IYS_* from pulls
    external_id     text NOT NULL DEFAULT '',
    -- Bumped by every newer consent; results are written only for the version sent.
    version         bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'in_flight', 'synced', 'rejected', 'failed')),
    outcome         text CHECK (outcome IN ('accepted', 'already_in_iys', 'no_prior_record', 'superseded',
                                            'too_old', 'invalid', 'unknown', 'from_iys')),
    iys_code        text,
    iys_message     text,
    transaction_id  text,
    attempts        int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    batch_id        bigint, -- the batches table and its foreign key come with the engine
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    synced_at       timestamptz,
    CONSTRAINT consents_key UNIQUE (connector_id, recipient, recipient_type, type),
    -- docs/cli.md's outcome table: a verdict only on a finished record, and
    -- the verdict decides between synced and rejected.
    CONSTRAINT consents_outcome_matches_state CHECK (
        CASE state
            WHEN 'synced' THEN coalesce(outcome IN ('accepted', 'already_in_iys', 'from_iys'), false)
            WHEN 'rejected' THEN coalesce(outcome IN ('no_prior_record', 'superseded', 'too_old', 'invalid', 'unknown'), false)
            ELSE outcome IS NULL
        END)
);

-- "Pending of this connector, oldest consent first": what the engine claims.
CREATE INDEX consents_pending ON consents (connector_id, consent_date, id) WHERE state = 'pending';

-- What the missing foreign key of consents would do on the connectors side:
-- refuse to delete (or renumber) a connector that still has records.
CREATE FUNCTION connectors_restrict_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.id <> OLD.id)
       AND EXISTS (SELECT 1 FROM consents WHERE connector_id = OLD.id) THEN
        RAISE EXCEPTION 'connector % still has consent records', OLD.brand_code
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER connectors_restrict_delete BEFORE DELETE OR UPDATE OF id ON connectors
    FOR EACH ROW EXECUTE FUNCTION connectors_restrict_delete();

CREATE TABLE imports (
    id           bigserial PRIMARY KEY,
    connector_id bigint NOT NULL REFERENCES connectors (id),
    path         text NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('email', 'sms')),
    lines        int NOT NULL CHECK (lines >= 0),
    blank        int NOT NULL CHECK (blank >= 0),
    valid        int NOT NULL CHECK (valid >= 0),
    rejected     int NOT NULL CHECK (rejected >= 0),
    superseded   int NOT NULL CHECK (superseded >= 0 AND superseded <= valid),
    rows         int NOT NULL CHECK (rows >= valid),
    inserted     int NOT NULL CHECK (inserted >= 0),
    updated      int NOT NULL CHECK (updated >= 0),
    unchanged    int NOT NULL CHECK (unchanged >= 0),
    imported_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (lines = blank + valid + rejected),
    CHECK (inserted + updated + unchanged <= rows)
);

CREATE INDEX imports_connector ON imports (connector_id, imported_at);
