-- 0008: each reconciliation of a day with İYS's daily files (the reconcile
-- command's, and serve's nightly one), so that status shows a connector's
-- last one and serve does not reconcile a day twice in a night.
--
-- result: done (the counts hold), failed (error says why), no_right (İYS
-- refused: the brand has not granted reconciliation, Mutabakat Yönetimi).
-- The counts are the findings by kind; unrepaired is the drift left as it
-- was (all of it in report mode).
CREATE TABLE reconciles (
    id                  bigserial   PRIMARY KEY,
    connector_id        bigint      NOT NULL REFERENCES connectors (id),
    day                 date        NOT NULL, -- the Türkiye day reconciled
    mode                text        NOT NULL CHECK (mode IN ('report', 'repair')),
    trigger             text        NOT NULL CHECK (trigger IN ('schedule', 'command')),
    result              text        NOT NULL CHECK (result IN ('done', 'failed', 'no_right')),
    missing_here        int         NOT NULL DEFAULT 0 CHECK (missing_here >= 0),
    status_differs      int         NOT NULL DEFAULT 0 CHECK (status_differs >= 0),
    only_here_synced    int         NOT NULL DEFAULT 0 CHECK (only_here_synced >= 0),
    ours_newer_unsent   int         NOT NULL DEFAULT 0 CHECK (ours_newer_unsent >= 0),
    ours_newer_rejected int         NOT NULL DEFAULT 0 CHECK (ours_newer_rejected >= 0),
    summary_mismatches  int         NOT NULL DEFAULT 0 CHECK (summary_mismatches >= 0),
    repaired            int         NOT NULL DEFAULT 0 CHECK (repaired >= 0),
    unrepaired          int         NOT NULL DEFAULT 0 CHECK (unrepaired >= 0),
    error               text,
    finished_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((result = 'done') = (error IS NULL))
);

-- A connector's last reconciliation (status, serve).
CREATE INDEX reconciles_connector ON reconciles (connector_id, finished_at DESC, id DESC);
