-- 0014: the statements that insert consents count what they insert.
--
-- consent_counts_insert (0012) took its rows from the INSERT's transition
-- table: a copy of every inserted row, kept whether a statement inserts
-- one record or a million. It cost 1.0-1.1 s of a 1,000,000-line import of
-- about 14 s (measured: the import with and without the trigger). The
-- three statements that insert consents (the merge's fresh and written in
-- staging.sql, ApplyChanges in consents.sql) add what they inserted to
-- consent_counts themselves, from the rows their RETURNING already holds
-- (fragment CountInserted). Updates and deletes keep their triggers. Every
-- store test ends by holding the kept counts to a full count
-- (checkKeptCounts), so a new insert path that does not count fails them.
DROP TRIGGER consent_counts_insert ON consents;

-- A pending record's consent day in Türkiye, the deadline's day: one
-- definition for the triggers, the inserts' counts and the tests.
CREATE FUNCTION consent_pending_day(state text, source text, consent_date timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN state = 'pending' AND source <> 'HS_2015' THEN (consent_date AT TIME ZONE 'Europe/Istanbul')::date END
$$;

CREATE OR REPLACE FUNCTION consent_counts_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch names only the transition tables its event has: PL/pgSQL
    -- plans a statement when it first runs it.
    IF TG_OP = 'DELETE' THEN
        INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
        SELECT connector_id, state, outcome, consent_pending_day(state, source, consent_date), -count(*)
        FROM old_rows GROUP BY 1, 2, 3, 4;
    ELSE
        INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
        SELECT connector_id, state, outcome, pending_day, sum(d)
        FROM (SELECT connector_id, state, outcome, consent_pending_day(state, source, consent_date) AS pending_day,
                     1 AS d
              FROM new_rows
              UNION ALL
              SELECT connector_id, state, outcome, consent_pending_day(state, source, consent_date), -1
              FROM old_rows) AS moved
        GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;
