-- batches and batch_items: one bulk request each, and the records it
-- carries with the version sent and İYS's subrequestId. Their row types are
-- batchRow and batchItemRow (batches.go). ClaimBatch, which makes a batch
-- of consents, and the batch's verdicts are in consents.sql.

-- fragment: SentEvents
-- The events of records sent (kind sent), from a CTE "sent" of the records
-- as updated, with their subrequest ids (sub); $2 is the request id.
events AS (
    INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                                external_id, version, state, request_id, subrequest_id, hash)
    SELECT id, event_seq, now(), 'sent', origin, status, consent_date, source, recipient_type, external_id,
           version, state, $2, sub, event_hash
    FROM sent
)

-- fragment: SentHead
-- The SET of a record sent: its chain head moved to its sent event; the
-- subrequest id is locked.sub.
event_seq = c.event_seq + 1,
event_hash = consent_event_hash(c.event_hash, c.event_seq + 1, now(), 'sent', c.origin, c.status, c.consent_date,
                                c.source, c.recipient_type, c.external_id, c.version, c.state, NULL, $2,
                                locked.sub, NULL, NULL, NULL, NULL, NULL)

-- name: SaveSubmission
-- Claimed batch $1 was sent as request $2: each record $3[i] got
-- subrequestId $4[i]. Each record still in flight in it gets its event
-- (kind sent), locked first in key order. Counts the items written (0: the
-- batch moved on).
WITH b AS (
    UPDATE batches SET request_id = $2, state = 'submitted', submitted_at = now()
    WHERE id = $1 AND state = 'claimed'
    RETURNING id
), u AS (
    UPDATE batch_items bi SET subrequest_id = u.sub
    FROM b, unnest($3::bigint[], $4::text[]) AS u(consent_id, sub)
    WHERE bi.batch_id = b.id AND bi.consent_id = u.consent_id
    RETURNING bi.consent_id, u.sub
), locked AS MATERIALIZED (
    SELECT c.id, u.sub FROM consents c JOIN u ON c.id = u.consent_id
    WHERE c.state = 'in_flight' AND c.batch_id = $1
    ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
    FOR NO KEY UPDATE OF c
), sent AS (
    UPDATE consents c SET {{template "SentHead"}}
    FROM locked WHERE c.id = locked.id
    RETURNING c.*, locked.sub
), {{template "SentEvents"}}
SELECT count(*) FROM u;

-- name: SaveSubRequest
-- Makes a bulk request carrying part of claimed batch $1 a batch of its own
-- (same connector and run), submitted with requestId $2: the records $3
-- still in flight in $1 move to it (locked in key order, each with its
-- event, kind sent), and it gets their items with the versions claimed and
-- subrequestIds $4. Returns the new batch (0: $1 is no
-- longer claimed) and how many items it got.
WITH parent AS (
    SELECT connector_id, run_id FROM batches WHERE id = $1 AND state = 'claimed'
),
child AS (
    INSERT INTO batches (connector_id, run_id, request_id, state, size, submitted_at)
    SELECT connector_id, run_id, $2, 'submitted', cardinality($3::bigint[]), now() FROM parent
    RETURNING id
),
locked AS MATERIALIZED (
    SELECT c.id, u.sub FROM consents c JOIN unnest($3::bigint[], $4::text[]) AS u(id, sub) ON c.id = u.id
    WHERE c.batch_id = $1 AND c.state = 'in_flight' AND EXISTS (SELECT FROM parent)
    ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
    FOR NO KEY UPDATE OF c
),
sent AS (
    UPDATE consents c SET batch_id = child.id, updated_at = now(), {{template "SentHead"}}
    FROM child, locked
    WHERE c.id = locked.id AND c.batch_id = $1 AND c.state = 'in_flight'
    RETURNING c.*, locked.sub
),
{{template "SentEvents"}},
items AS (
    INSERT INTO batch_items (batch_id, consent_id, version, subrequest_id)
    SELECT child.id, bi.consent_id, bi.version, u.sub
    FROM child, unnest($3::bigint[], $4::text[]) AS u(id, sub)
    JOIN batch_items bi ON bi.batch_id = $1 AND bi.consent_id = u.id
    RETURNING 1
)
SELECT coalesce((SELECT id FROM child), 0) AS id, (SELECT count(*) FROM items) AS n;

-- name: CloseBatch
UPDATE batches SET state = $2, finished_at = now() WHERE id = $1 AND state IN ('claimed', 'submitted');

-- name: RecoverSubmitted
-- Connector $1's batches submitted but not finished, with their items and
-- the items' records whole, by batch: each column named for the struct
-- field it fills (b, bi, c).
SELECT b.id AS "b.id", b.request_id AS "b.request_id",
       bi.subrequest_id AS "bi.subrequest_id", bi.version AS "bi.version",
       {{columnsAs "consents" "c"}}
FROM batches b
JOIN batch_items bi ON bi.batch_id = b.id
JOIN consents c ON c.id = bi.consent_id
WHERE b.connector_id = $1 AND b.state = 'submitted'
ORDER BY b.id, bi.consent_id;

-- name: CountOpenBatches
-- Connector $1's batches in flight: claimed or submitted, not finished.
SELECT count(*) FROM batches WHERE connector_id = $1 AND state IN ('claimed', 'submitted');
