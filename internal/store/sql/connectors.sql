-- connectors: one brand each. Its row type is connectorRow (connectors.go).
--
-- consents.connector_id has no foreign key (see migrations/0001_init.sql):
-- every transaction that inserts consents locks its connector row FOR KEY
-- SHARE first, as the key check would (LockConnector, LockConnectorChannels).

-- An uninstalled connector is kept with its records and history, but no
-- statement but InstallConnector (which brings it back) and the redrives'
-- sees it: it is no connector to imports, intake, runs and reports.

-- name: InstallConnector
-- Inserts a connector unless its brand is there (then no row); an
-- uninstalled one comes back, active, with these values.
INSERT INTO connectors (brand_code, iys_code, channels, recipient_type, default_source, first_sync_at, verified_at, source_query)
VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''))
ON CONFLICT (brand_code) DO UPDATE SET
    iys_code = excluded.iys_code, channels = excluded.channels, recipient_type = excluded.recipient_type,
    default_source = excluded.default_source, first_sync_at = excluded.first_sync_at,
    verified_at = excluded.verified_at, source_query = excluded.source_query, state = 'active', installed_at = now()
WHERE connectors.state = 'uninstalled'
RETURNING {{columns "connectors"}};

-- name: ConnectorByBrand
SELECT {{columns "connectors"}} FROM connectors WHERE brand_code = $1 AND state <> 'uninstalled';

-- name: Connectors
SELECT {{columns "connectors"}} FROM connectors WHERE state <> 'uninstalled' ORDER BY brand_code;

-- name: SyncConnectors
-- The named connectors ($1), or all of them when $1 is NULL.
SELECT id, brand_code, iys_code, state, source_query FROM connectors
WHERE state <> 'uninstalled' AND ($1::text[] IS NULL OR brand_code = ANY($1))
ORDER BY brand_code;

-- name: SetConnectorState
-- Pauses or resumes brand $1's connector (state $2); returns the state it had.
UPDATE connectors c SET state = $2
FROM (SELECT id, state FROM connectors WHERE brand_code = $1 AND state <> 'uninstalled' FOR UPDATE) was
WHERE c.id = was.id
RETURNING was.state;

-- name: UpdateConnector
-- Changes what an installed connector syncs (brand $1), and when İYS last
-- confirmed its rights ($6; NULL: not for every channel).
UPDATE connectors SET channels = $2, recipient_type = $3, default_source = $4, source_query = NULLIF($5, ''),
       verified_at = $6
WHERE brand_code = $1 AND state <> 'uninstalled'
RETURNING {{columns "connectors"}};

-- name: LockConnectorForUninstall
-- Brand $1's connector, locked against imports (FOR KEY SHARE), and
-- whether a run holds it (the run lock of locks.go: class $2, the id).
SELECT id, NOT pg_try_advisory_xact_lock($2, id::int4) AS running
FROM connectors WHERE brand_code = $1 AND state <> 'uninstalled' FOR UPDATE;

-- name: Uninstall
UPDATE connectors SET state = 'uninstalled' WHERE id = $1;

-- name: LockConnector
SELECT id FROM connectors WHERE id = $1 FOR KEY SHARE;

-- name: LockConnectorChannels
SELECT channels FROM connectors WHERE id = $1 AND state <> 'uninstalled' FOR KEY SHARE;

-- name: LockConnectorChannelsAlone
-- As LockConnectorChannels, but FOR UPDATE: every other writer of the
-- connector's records (they all take FOR KEY SHARE first) waits until this
-- transaction ends. The copy of a first file (importFile) takes it.
SELECT channels FROM connectors WHERE id = $1 AND state <> 'uninstalled' FOR UPDATE;

-- name: ConnectorChannels
SELECT channels FROM connectors WHERE id = $1;

-- name: MarkSourceRead
UPDATE connectors SET source_read_at = now() WHERE id = $1;
