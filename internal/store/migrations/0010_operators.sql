-- 0010: the operators' levers. A connector may be uninstalled: no longer
-- served, its records and history kept (install brings it back).
ALTER TABLE connectors DROP CONSTRAINT connectors_state_check;
ALTER TABLE connectors ADD CONSTRAINT connectors_state_check CHECK (state IN ('active', 'paused', 'uninstalled'));

-- One row per redrive: who put which failed or rejected records of a
-- connector back to pending, when, with what filter, and how many.
CREATE TABLE redrives (
    id           bigserial   PRIMARY KEY,
    connector_id bigint      NOT NULL REFERENCES connectors (id),
    operator     text        NOT NULL CHECK (operator <> ''),
    redriven_at  timestamptz NOT NULL DEFAULT now(),
    states       text[]      NOT NULL CHECK (cardinality(states) > 0 AND states <@ ARRAY['failed', 'rejected']),
    outcomes     text[]      NOT NULL DEFAULT '{}', -- none: every outcome
    since        timestamptz,                       -- verdicts written since; NULL: any time
    requeued     int         NOT NULL CHECK (requeued >= 0)
);

CREATE INDEX redrives_connector ON redrives (connector_id, redriven_at);
