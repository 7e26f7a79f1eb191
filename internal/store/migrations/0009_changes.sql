-- 0009: the changes feed (GET /v1/connectors/{brandCode}/changes), what the
-- brand's systems learn back from us: one row per change İYS brought us (a
-- record becoming İYS's value, outcome from_iys: a pulled change, a
-- superseded record refreshed) and one per consent İYS refused for good (a
-- record becoming rejected). Triggers on consents write them in the
-- transaction of the change, whichever statement makes it, so that no
-- writer can forget one and none is kept for a change rolled back.
CREATE TABLE changes (
    id             bigserial PRIMARY KEY,
    connector_id   bigint NOT NULL,
    -- The change's place in its connector's feed, 1, 2, ...: given once it
    -- is committed, by the feed's reader under a lock (see changes.sql), so
    -- that a change committed late comes after those already read, never
    -- before them. NULL until then.
    pos            bigint,
    consent_id     bigint NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('from_iys', 'refused')),
    -- The record as the change left it.
    recipient      text NOT NULL,
    recipient_type text NOT NULL,
    type           text NOT NULL,
    status         text NOT NULL,
    consent_date   timestamptz NOT NULL,
    source         text NOT NULL,
    outcome        text NOT NULL,
    iys_code       text,
    iys_message    text,
    at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT changes_feed UNIQUE (connector_id, pos)
);

-- The changes not yet placed in their feed.
CREATE INDEX changes_unplaced ON changes (connector_id, id) WHERE pos IS NULL;

CREATE FUNCTION consents_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (connector_id, consent_id, kind, recipient, recipient_type, type, status, consent_date,
                         source, outcome, iys_code, iys_message)
    VALUES (NEW.connector_id, NEW.id, CASE WHEN NEW.state = 'rejected' THEN 'refused' ELSE 'from_iys' END,
            NEW.recipient, NEW.recipient_type, NEW.type, NEW.status, NEW.consent_date, NEW.source, NEW.outcome,
            NEW.iys_code, NEW.iys_message);
    RETURN NULL;
END
$$;

-- The conditions are the triggers' WHEN, checked without calling the
-- function: the imports' rows (pending, no outcome) cost a comparison each.
-- A pulled record is new (insert) or a new version; a refusal is a record
-- that becomes rejected.
CREATE TRIGGER consents_change_inserted AFTER INSERT ON consents
    FOR EACH ROW WHEN (NEW.outcome = 'from_iys')
    EXECUTE FUNCTION consents_record_change();

CREATE TRIGGER consents_change_updated AFTER UPDATE ON consents
    FOR EACH ROW WHEN ((NEW.outcome = 'from_iys' AND NEW.version <> OLD.version)
                       OR (NEW.state = 'rejected' AND OLD.state <> 'rejected'))
    EXECUTE FUNCTION consents_record_change();
