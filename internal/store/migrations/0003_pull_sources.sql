-- 0003: İYS issues a changes-feed cursor per brand AND source (IYS: the
-- citizens' changes; HS: the brand's own), so the pull keeps one per source.
ALTER TABLE pull_cursors ADD COLUMN source text NOT NULL DEFAULT 'IYS' CHECK (source IN ('IYS', 'HS'));
ALTER TABLE pull_cursors DROP CONSTRAINT pull_cursors_pkey;
ALTER TABLE pull_cursors ADD PRIMARY KEY (connector_id, source);
