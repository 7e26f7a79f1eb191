-- connectors: one brand each. Its row type is connectorRow (connectors.go).
--
-- consents.connector_id has no foreign key (see migrations/0001_init.sql):
-- every transaction that inserts consents locks its connector row FOR KEY
-- SHARE first, as the key check would (LockConnector, LockConnectorChannels).

-- name: InstallConnector
-- Inserts a connector unless its brand is there (then no row).
INSERT INTO connectors (brand_code, iys_code, channels, recipient_type, default_source, first_sync_at, verified_at, source_query)
VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''))
ON CONFLICT (brand_code) DO NOTHING
RETURNING {{columns "connectors"}};

-- name: ConnectorByBrand
SELECT {{columns "connectors"}} FROM connectors WHERE brand_code = $1;

-- name: Connectors
SELECT {{columns "connectors"}} FROM connectors ORDER BY brand_code;

-- name: SyncConnectors
-- The named connectors ($1), or all of them when $1 is NULL.
SELECT id, brand_code, iys_code, state FROM connectors
WHERE $1::text[] IS NULL OR brand_code = ANY($1)
ORDER BY brand_code;

-- name: LockConnector
SELECT id FROM connectors WHERE id = $1 FOR KEY SHARE;

-- name: LockConnectorChannels
SELECT channels FROM connectors WHERE id = $1 FOR KEY SHARE;

-- name: ConnectorChannels
SELECT channels FROM connectors WHERE id = $1;

-- name: MarkSourceRead
UPDATE connectors SET source_read_at = now() WHERE id = $1;
