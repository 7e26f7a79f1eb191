-- 0002: the sync engine's tables: runs, batches (one bulk request each) and
-- their items, and the pull cursors of the next issue.

-- One row per connector per run of the engine. Its counters grow with every
-- finished batch (in the batch's transaction), so a run that dies keeps what
-- it did; a run left 'running' is closed by the connector's next run.
CREATE TABLE runs (
    id           bigserial PRIMARY KEY,
    connector_id bigint NOT NULL REFERENCES connectors (id),
    trigger      text NOT NULL CHECK (trigger IN ('schedule', 'run-now')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'partial', 'failed')),
    sent         int NOT NULL DEFAULT 0 CHECK (sent >= 0),
    accepted     int NOT NULL DEFAULT 0 CHECK (accepted >= 0), -- synced: accepted or already in İYS
    rejected     int NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    retried      int NOT NULL DEFAULT 0 CHECK (retried >= 0),
    failed       int NOT NULL DEFAULT 0 CHECK (failed >= 0),
    error        text,
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'running') = (finished_at IS NULL))
);

-- The last run of a connector (status), and the runs a new one closes.
CREATE INDEX runs_connector ON runs (connector_id, started_at DESC, id DESC);
CREATE INDEX runs_running ON runs (connector_id) WHERE status = 'running';

-- One bulk request. request_id is saved before polling; a batch 'claimed'
-- without one never reached İYS as far as we know, and its records go back
-- to pending; one 'submitted' is polled again instead of sent twice.
CREATE TABLE batches (
    id           bigserial PRIMARY KEY,
    connector_id bigint NOT NULL REFERENCES connectors (id),
    run_id       bigint NOT NULL REFERENCES runs (id),
    request_id   text,
    state        text NOT NULL DEFAULT 'claimed' CHECK (state IN ('claimed', 'submitted', 'done', 'released')),
    size         int NOT NULL CHECK (size BETWEEN 1 AND 1000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    submitted_at timestamptz,
    finished_at  timestamptz,
    CHECK ((state = 'submitted') <= (request_id IS NOT NULL)),
    CHECK ((state IN ('done', 'released')) = (finished_at IS NOT NULL))
);

-- Recovery: the unfinished batches of a connector.
CREATE INDEX batches_open ON batches (connector_id, state) WHERE state IN ('claimed', 'submitted');

-- The records of a batch, with the version sent and İYS's subrequestId
-- (results are matched by it only). No foreign key to consents: the claim
-- writes up to 1000 of these at once, and consents are never deleted.
CREATE TABLE batch_items (
    batch_id      bigint NOT NULL REFERENCES batches (id),
    consent_id    bigint NOT NULL,
    version       bigint NOT NULL CHECK (version >= 1),
    subrequest_id text,
    PRIMARY KEY (batch_id, consent_id)
);

-- The foreign key 0001 left for the engine: a record's last batch. Batches
-- are never deleted while records name them (nothing deletes them yet).
ALTER TABLE consents ADD CONSTRAINT consents_batch FOREIGN KEY (batch_id) REFERENCES batches (id);

-- The records in flight of a connector (backlog, releases): few at a time.
CREATE INDEX consents_in_flight ON consents (connector_id, batch_id) WHERE state = 'in_flight';

-- Per connector, the opaque `after` cursor of İYS's changes feed as İYS
-- returned it (never built from a date), when it was last pulled, and how
-- many changes were applied in all. For the pull of the next issue.
CREATE TABLE pull_cursors (
    connector_id bigint PRIMARY KEY REFERENCES connectors (id),
    after        text NOT NULL DEFAULT '',
    pulled_at    timestamptz,
    applied      bigint NOT NULL DEFAULT 0 CHECK (applied >= 0)
);
