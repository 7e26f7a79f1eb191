-- source_users: the users (external ids) each read of a connector's
-- user-table source returned, and when last. Its row type is sourceUserRow
-- (source.go).

-- name: SeeSourceUsers
-- The users of this read (the staged rows), then how many users of earlier
-- reads it has not. now() is the transaction's start: the same for every
-- statement of the read's transaction.
WITH seen AS (
    INSERT INTO source_users (connector_id, external_id, seen_at)
    SELECT DISTINCT $1::bigint, external_id, now() FROM import_rows WHERE external_id <> ''
    ON CONFLICT (connector_id, external_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM seen),
       (SELECT count(*) FROM source_users u
        WHERE u.connector_id = $1 AND u.seen_at < now()
          AND NOT EXISTS (SELECT 1 FROM import_rows s WHERE s.external_id = u.external_id));

-- fragment: Disappeared
-- Users an earlier read of connector $1's source returned and its last read did not.
FROM source_users u JOIN connectors c ON c.id = u.connector_id
WHERE u.connector_id = $1 AND c.source_read_at IS NOT NULL AND u.seen_at < c.source_read_at

-- name: CountDisappeared
SELECT count(*) {{template "Disappeared"}};

-- name: ListDisappeared
SELECT u.external_id {{template "Disappeared"}} ORDER BY u.external_id LIMIT $2;

-- name: PurgeSourceUsers
DELETE FROM source_users WHERE connector_id = $1;
