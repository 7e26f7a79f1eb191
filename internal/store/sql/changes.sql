-- changes: the changes feed, written by triggers on consents (migration
-- 0009). Its row type is changeRow (changes.go).

-- name: HasUnplacedChanges
SELECT EXISTS (SELECT FROM changes WHERE connector_id = $1 AND pos IS NULL);

-- name: LockFeed
-- The feed's lock of connector $2 ($1 is the key class), held until the
-- transaction ends: one placer at a time.
SELECT pg_advisory_xact_lock($1, $2::int4);

-- name: PlaceChanges
-- Under LockFeed: gives the connector's committed changes that have no
-- place yet the places after the last one, in id order. A change whose
-- transaction is still open is not seen, and gets its place when a later
-- read finds it committed: after every place already given.
WITH last AS (
    SELECT coalesce(max(pos), 0) AS pos FROM changes WHERE connector_id = $1
), todo AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n FROM changes WHERE connector_id = $1 AND pos IS NULL
)
UPDATE changes c SET pos = last.pos + todo.n
FROM last, todo
WHERE c.id = todo.id;

-- name: ChangesAfter
-- Up to $3 placed changes of connector $1 after place $2, in feed order.
SELECT {{columns "changes"}}
FROM changes
WHERE connector_id = $1 AND pos > $2
ORDER BY pos
LIMIT $3;

-- name: PurgeChanges
-- uninstall --purge: the changes feed holds recipients too.
DELETE FROM changes WHERE connector_id = $1;
