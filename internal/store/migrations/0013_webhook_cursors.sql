-- 0013: webhooks (IYS_WEBHOOK_URL): where each connector's delivery of its
-- changes feed stands. The feed itself (changes, 0009) is the outbox: its
-- rows are written by triggers in the transaction of each change, so a
-- delivery needs only a cursor into it. One row per connector, made by the
-- first delivery; a replica delivers a connector only while it holds the
-- row locked (FOR UPDATE SKIP LOCKED), so replicas never deliver one
-- connector at once.
CREATE TABLE webhook_cursors (
    connector_id    bigint      PRIMARY KEY REFERENCES connectors (id),
    -- The feed place (changes.pos) up to which the receiver answered 2xx.
    delivered_pos   bigint      NOT NULL DEFAULT 0,
    delivered_at    timestamptz,
    -- Failed tries since the last delivery, and the last failure's
    -- message (an HTTP status or a network error: never the secret).
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    -- The next try is not before this: backoff after a failure.
    next_attempt_at timestamptz NOT NULL
);
