-- 0004: a connector may read its consents from the brand's own user table
-- (the reverse-ETL source): the query, and which users it last returned, so
-- that users who disappear from it are reported (never deleted).
ALTER TABLE connectors ADD COLUMN source_query text;

CREATE TABLE source_users (
    connector_id bigint      NOT NULL,
    external_id  text        NOT NULL,
    seen_at      timestamptz NOT NULL,
    PRIMARY KEY (connector_id, external_id)
);

-- When the source was last read: users not seen since are the disappeared.
ALTER TABLE connectors ADD COLUMN source_read_at timestamptz;
