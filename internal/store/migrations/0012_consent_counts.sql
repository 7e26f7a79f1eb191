-- 0012: counts that do not scan.
--
-- status, /metrics and the deadline report counted a connector's records on
-- every call: seconds at millions of records. consent_counts keeps them
-- instead, by state and outcome, and, for the deadline, pending records by
-- the Türkiye day of their consent. Triggers write it in the transaction
-- of every statement that changes consents, whatever the path (import,
-- intake, source, sync, pull, reconcile, redrive...): no writer can forget.
--
-- Writers only INSERT deltas, never update a shared row, so that they
-- never wait for each other here nor deadlock; reads sum a connector's
-- rows, and CompactCounts folds them into one row per key now and then.
CREATE TABLE consent_counts (
    connector_id bigint NOT NULL,
    state        text   NOT NULL,
    outcome      text,          -- NULL: no verdict yet
    pending_day  date,          -- a pending record's consent day in Türkiye (HS_2015 aside: no deadline); else NULL
    n            bigint NOT NULL
);
CREATE INDEX consent_counts_connector ON consent_counts (connector_id);

CREATE FUNCTION consent_counts_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch names only the transition tables its event has: PL/pgSQL
    -- plans a statement when it first runs it.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
        SELECT connector_id, state, outcome,
               CASE WHEN state = 'pending' AND source <> 'HS_2015' THEN (consent_date AT TIME ZONE 'Europe/Istanbul')::date END,
               count(*)
        FROM new_rows GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
        SELECT connector_id, state, outcome,
               CASE WHEN state = 'pending' AND source <> 'HS_2015' THEN (consent_date AT TIME ZONE 'Europe/Istanbul')::date END,
               -count(*)
        FROM old_rows GROUP BY 1, 2, 3, 4;
    ELSE
        INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
        SELECT connector_id, state, outcome, pending_day, sum(d)
        FROM (SELECT connector_id, state, outcome,
                     CASE WHEN state = 'pending' AND source <> 'HS_2015' THEN (consent_date AT TIME ZONE 'Europe/Istanbul')::date END AS pending_day,
                     1 AS d
              FROM new_rows
              UNION ALL
              SELECT connector_id, state, outcome,
                     CASE WHEN state = 'pending' AND source <> 'HS_2015' THEN (consent_date AT TIME ZONE 'Europe/Istanbul')::date END,
                     -1
              FROM old_rows) AS moved
        GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER consent_counts_insert AFTER INSERT ON consents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION consent_counts_delta();
CREATE TRIGGER consent_counts_update AFTER UPDATE ON consents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION consent_counts_delta();
CREATE TRIGGER consent_counts_delete AFTER DELETE ON consents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION consent_counts_delta();

-- Pending records a batch gave back (FinishBatch keeps their batch_id; an
-- import or a pull clears it): those that may wait for a retry's delay.
-- status counts them without reading every pending record; an import's
-- new records (no batch yet) are not in it, so it costs the import nothing.
CREATE INDEX consents_pending_again ON consents (connector_id, next_attempt_at)
    WHERE state = 'pending' AND batch_id IS NOT NULL;

-- The records already there.
INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
SELECT connector_id, state, outcome,
       CASE WHEN state = 'pending' AND source <> 'HS_2015' THEN (consent_date AT TIME ZONE 'Europe/Istanbul')::date END,
       count(*)
FROM consents GROUP BY 1, 2, 3, 4;
