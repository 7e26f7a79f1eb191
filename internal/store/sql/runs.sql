-- runs: one row per connector per run of the engine. Its row type is Run
-- (runs.go). The counters grow with every finished batch (CountInRun, in
-- the batch's transaction).

-- name: StartRuns
-- A run of trigger $2 over each connector of $1, in one statement: the
-- connectors' runs left 'running' by a process that died are closed (the
-- UPDATE does not see the rows the INSERT adds), and each new run tells
-- whether its connector has batches an earlier run left unfinished.
WITH new AS (
    INSERT INTO runs (connector_id, trigger)
    SELECT id, $2 FROM unnest($1::bigint[]) AS id
    RETURNING id, connector_id
), dead AS (
    UPDATE runs r SET status = 'failed', finished_at = now(), error = 'killed (closed by run ' || new.id || ')'
    FROM new WHERE r.connector_id = new.connector_id AND r.status = 'running'
    RETURNING r.id
)
SELECT new.connector_id, new.id AS run_id,
       EXISTS (SELECT 1 FROM batches b WHERE b.connector_id = new.connector_id
               AND b.state IN ('claimed', 'submitted')) AS recover
FROM new;

-- name: FinishRuns
-- FinishRun of each run $1[i] with status $2[i] and error $3[i] ('' none);
-- returns the runs it finished (a run no longer running is left out).
UPDATE runs r SET status = e.status, finished_at = now(), heartbeat_at = now(), error = NULLIF(e.error, '')
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS e (id, status, error)
WHERE r.id = e.id AND r.status = 'running'
RETURNING r.id;

-- name: CountInRun
UPDATE runs SET sent = sent + $2, accepted = accepted + $3, rejected = rejected + $4,
                retried = retried + $5, failed = failed + $6, heartbeat_at = now()
WHERE id = $1;

-- name: LastRun
SELECT {{columns "runs"}} FROM runs
WHERE connector_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1;

-- name: LastFinishedRun
SELECT {{columns "runs"}} FROM runs
WHERE connector_id = $1 AND status <> 'running' ORDER BY started_at DESC, id DESC LIMIT 1;

-- name: LastCompletedAt
-- When the connector's latest completed run finished: NULL when none has.
SELECT max(finished_at) FROM runs WHERE connector_id = $1 AND status = 'completed';

-- name: RunByID
SELECT {{columns "runs"}} FROM runs WHERE id = $1;

-- name: UnfinishedNights
-- Active connectors due at tick $1 with no completed or partial run since,
-- and whose run lock (class $2, see locks.go) no session holds, each with
-- its latest run since the tick, if any.
SELECT c.brand_code, r.id AS run_id, r.status, r.error
FROM connectors c
LEFT JOIN LATERAL (
    SELECT id, status, error FROM runs
    WHERE connector_id = c.id AND started_at >= $1
    ORDER BY started_at DESC, id DESC LIMIT 1
) r ON true
WHERE c.state = 'active' AND c.first_sync_at <= $1
  AND NOT EXISTS (SELECT 1 FROM runs d WHERE d.connector_id = c.id AND d.started_at >= $1
                  AND d.status IN ('completed', 'partial'))
  AND NOT EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND l.classid = $2::bigint::oid AND l.objid = c.id::oid)
ORDER BY c.brand_code;

-- name: RunHistory
-- Runs newest first, of brand $1's connector or of every connector when $1
-- is '', at most $2, each with its connector's brand code.
SELECT {{columnsAs "runs" "r"}}, c.brand_code AS brand_code
FROM runs r JOIN connectors c ON c.id = r.connector_id
WHERE ($1 = '' OR c.brand_code = $1) AND c.state <> 'uninstalled'
ORDER BY r.started_at DESC, r.id DESC
LIMIT $2;
