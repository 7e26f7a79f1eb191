-- pull_cursors: per connector and feed source, where the pull of İYS's
-- changes feed stands. Its row type is pullCursorRow (pull.go).

-- name: PullCursors
SELECT {{columns "pull_cursors"}} FROM pull_cursors WHERE connector_id = $1;

-- name: StoreCursor
-- After a page of source $2: the cursor that follows it ($3; '' keeps the
-- stored one), $4 more changes applied, and whether it reached the feed's end ($5).
INSERT INTO pull_cursors (connector_id, source, after, pulled_at, applied, complete_at)
VALUES ($1, $2, $3, now(), $4, CASE WHEN $5 THEN now() END)
ON CONFLICT (connector_id, source) DO UPDATE SET
    after = CASE WHEN excluded.after <> '' THEN excluded.after ELSE pull_cursors.after END,
    pulled_at = now(), applied = pull_cursors.applied + excluded.applied,
    complete_at = coalesce(excluded.complete_at, pull_cursors.complete_at);

-- name: ResetPullCursors
UPDATE pull_cursors SET after = '' WHERE connector_id = $1 AND after <> '';
