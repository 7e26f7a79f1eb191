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
    -- The writing transaction's id (pg_current_xact_id, 64 bits: it never
    -- wraps). The feed orders by (xid, id) and serves only transactions that
    -- have ended, so that no change can later appear before one served.
    xid            bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
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
    at             timestamptz NOT NULL DEFAULT now()
);

-- A connector's feed, in its order.
CREATE INDEX changes_feed ON changes (connector_id, xid, id);

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
