-- webhook_cursors: where each connector's webhook delivery stands (migration
-- 0013). Its row type is webhookCursorRow (webhooks.go).

-- name: EnsureWebhookCursor
-- The connector's cursor at the feed's start, due at once ($2: now).
INSERT INTO webhook_cursors (connector_id, next_attempt_at) VALUES ($1, $2) ON CONFLICT (connector_id) DO NOTHING;

-- name: TakeWebhookCursor
-- The connector's cursor, locked until the transaction ends, if it is due
-- ($2: now) and no other replica holds it.
SELECT {{columns "webhook_cursors"}}
FROM webhook_cursors
WHERE connector_id = $1 AND next_attempt_at <= $2
FOR UPDATE SKIP LOCKED;

-- name: WebhookDelivered
-- The receiver answered 2xx for the changes up to place $2.
UPDATE webhook_cursors
SET delivered_pos = $2, delivered_at = $3, attempts = 0, last_error = NULL, next_attempt_at = $3
WHERE connector_id = $1;

-- name: WebhookFailed
-- A try failed ($2, the message); the next is not before $3.
UPDATE webhook_cursors
SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
WHERE connector_id = $1;

-- name: WebhookCursor
SELECT {{columns "webhook_cursors"}} FROM webhook_cursors WHERE connector_id = $1;

-- name: WebhookLag
-- The connector's changes not yet delivered (placed after the cursor, or
-- not yet placed), and when the oldest was written. Each part reads its
-- own index (changes_feed, changes_unplaced); least() skips a NULL.
WITH cur AS (
    SELECT coalesce((SELECT delivered_pos FROM webhook_cursors WHERE connector_id = $1), 0) AS pos
)
SELECT (SELECT count(*) FROM changes c, cur WHERE c.connector_id = $1 AND c.pos > cur.pos)
       + (SELECT count(*) FROM changes WHERE connector_id = $1 AND pos IS NULL) AS n,
       least((SELECT c.at FROM changes c, cur WHERE c.connector_id = $1 AND c.pos > cur.pos ORDER BY c.pos LIMIT 1),
             (SELECT min(at) FROM changes WHERE connector_id = $1 AND pos IS NULL)) AS oldest;

-- name: PurgeWebhookCursor
-- uninstall --purge: the feed is gone, and so is the place in it.
DELETE FROM webhook_cursors WHERE connector_id = $1;
