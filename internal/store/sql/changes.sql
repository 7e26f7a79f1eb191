-- changes: the changes feed, written by triggers on consents (migration
-- 0009). Its row type is changeRow (changes.go).

-- name: ChangesAfter
-- Up to $4 changes of connector $1 after the cursor ($2 xid, $3 id), in
-- feed order, from transactions that have ended only: one still running
-- may hold a change with a smaller xid, which a later page would then skip.
SELECT {{columns "changes"}}
FROM changes
WHERE connector_id = $1 AND (xid, id) > ($2::bigint, $3::bigint)
  AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY xid, id
LIMIT $4;
