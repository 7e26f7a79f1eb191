-- 0005: the pull follows İYS's changes feed to its end and keeps what it
-- cannot read.
--
-- complete_at: when a pull of this feed source last reached the feed's end.
-- The lag watchdog counts from the older of a connector's two sources, not
-- from the last attempt: a pull that failed mid-feed leaves it as it was.
ALTER TABLE pull_cursors ADD COLUMN complete_at timestamptz;
-- Earlier pulls took themselves for complete: start from their time rather
-- than from installation (which would call every connector's changes lost);
-- the next pull sets the true time.
UPDATE pull_cursors SET complete_at = pulled_at;

-- A feed entry the pull could not read (an unexpected date layout, a missing
-- field, an unknown type...), kept as İYS sent it with the reason, stored in
-- the transaction of its page, so that the rest of the page is applied and
-- nothing is dropped unseen. raw holds personal data: never log it.
CREATE TABLE pull_quarantine (
    id             bigserial   PRIMARY KEY,
    connector_id   bigint      NOT NULL REFERENCES connectors (id),
    source         text        NOT NULL CHECK (source IN ('IYS', 'HS')),
    raw            text        NOT NULL,
    reason         text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
-- The same entry read again (a page pulled twice, a reset cursor) is kept once.
CREATE UNIQUE INDEX pull_quarantine_entry ON pull_quarantine (connector_id, source, md5(raw));
