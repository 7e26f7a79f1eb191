-- consents: the records, one per (connector, recipient, recipient type, type).
-- Their row type is Record (consents.go); the import's merge is in staging.sql.
--
-- Every writer locks consent rows in key order (connector, recipient,
-- recipient type, type): see retry.go. Keep that order in any statement here.

-- name: ConsentsOf
-- The connector's records that match a state and an outcome ('' matches all), in id order.
SELECT {{columns "consents" "c"}}
FROM consents c
WHERE c.connector_id = $1 AND ($2 = '' OR c.state = $2) AND ($3 = '' OR c.outcome = $3)
ORDER BY c.id;

-- name: RecordsOfKeys
-- The connector's records of the keys given as three arrays, in no order.
SELECT {{columns "consents" "c"}}
FROM unnest($2::text[], $3::text[], $4::text[]) AS k(recipient, recipient_type, type)
JOIN consents c ON c.connector_id = $1 AND c.recipient = k.recipient
                AND c.recipient_type = k.recipient_type AND c.type = k.type;

-- name: PermissionsOf
-- The records of connector $1 of recipient type $2 and type $3 whose
-- recipient is one of $4 (as stored), in no order: one probe of the
-- consents key's index per recipient, for the permission check.
SELECT c.recipient, c.status, c.consent_date, c.source, c.state
FROM consents c
WHERE c.connector_id = $1 AND c.recipient = ANY($4::text[]) AND c.recipient_type = $2 AND c.type = $3;

-- name: SyncedBetween
-- The connector's synced records of outcome $2 synced in [$3, $4), in id order.
SELECT {{columns "consents" "c"}}
FROM consents c
WHERE c.connector_id = $1 AND c.state = 'synced' AND c.outcome = $2 AND c.synced_at >= $3 AND c.synced_at < $4
ORDER BY c.id;

-- name: SupersededRecords
-- Up to $2 of the connector's superseded records, the longest-waiting first
-- (index consents_superseded: they are few).
SELECT {{columns "consents"}} FROM consents
WHERE connector_id = $1 AND state = 'rejected' AND outcome = 'superseded'
ORDER BY updated_at, id LIMIT $2;

-- name: ReplaceFromIYS
-- A superseded record becomes what İYS holds, if still that version and
-- superseded, with its event (kind refresh, origin iys:SOURCE).
WITH r AS (
    UPDATE consents c SET status = $3, consent_date = $4, source = $5, transaction_id = $6,
           version = c.version + 1, state = 'synced', outcome = 'from_iys', iys_code = NULL, iys_message = NULL,
           updated_at = now(), synced_at = now(), origin = 'iys:' || $5, event_seq = c.event_seq + 1,
           event_hash = consent_event_hash(c.event_hash, c.event_seq + 1, now(), 'refresh', 'iys:' || $5, $3, $4, $5,
                                           c.recipient_type, c.external_id, c.version + 1, 'synced', NULL, NULL,
                                           NULL, NULLIF($6, ''), NULL, 'from_iys', NULL, NULL)
    WHERE c.id = $1 AND c.version = $2 AND c.state = 'rejected' AND c.outcome = 'superseded'
    RETURNING c.*
)
INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                            external_id, version, state, transaction_id, outcome, hash)
SELECT id, event_seq, now(), 'refresh', origin, status, consent_date, source, recipient_type, external_id, version,
       state, NULLIF(transaction_id, ''), outcome, event_hash
FROM r;

-- name: CountByState
-- From the kept counts (migrations/0012); rows tells how many delta rows
-- were summed, for compaction.
SELECT state, outcome, sum(n) AS n, count(*) AS rows FROM consent_counts
WHERE connector_id = $1 GROUP BY state, outcome;

-- name: CompactCounts
-- Folds connector $1's count deltas into one row per key, unless another
-- session is compacting them (the lock's class is $2).
WITH mine AS (SELECT pg_try_advisory_xact_lock($2, $1::int4) AS ok),
gone AS (
    DELETE FROM consent_counts WHERE connector_id = $1 AND (SELECT ok FROM mine)
    RETURNING state, outcome, pending_day, n
)
INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
SELECT $1, state, outcome, pending_day, sum(n) FROM gone
GROUP BY state, outcome, pending_day HAVING sum(n) <> 0;

-- fragment: CountInserted
-- A CTE named after its argument, a CTE of an INSERT INTO consents: adds
-- the records that statement inserted to the kept counts, from its
-- RETURNING rows (connector_id, state, outcome, source, consent_date and
-- inserted). Inserts count themselves: no trigger does (see
-- 0014_inserts_count_themselves.sql).
{{.}}_counted AS (
    INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
    SELECT connector_id, state, outcome, consent_pending_day(state, source, consent_date), count(*)
    FROM {{.}} WHERE inserted GROUP BY 1, 2, 3, 4
)

-- name: NotYetDue
-- Pending records waiting for their date ($2 is now, $3 the tolerance), and
-- those a batch gave back that wait for a retry's delay: two index ranges,
-- not a read of every pending record.
SELECT (SELECT count(*) FROM consents WHERE connector_id = $1 AND state = 'pending' AND {{early 2 3}})
     + (SELECT count(*) FROM consents
        WHERE connector_id = $1 AND state = 'pending' AND batch_id IS NOT NULL AND next_attempt_at > now()
          AND NOT {{early 2 3}});

-- name: PendingGivenBefore
-- The kept counts of the Türkiye days before $2's, and the records of $2's
-- own day counted (one day of the pending index).
SELECT coalesce((SELECT sum(n) FROM consent_counts
                 WHERE connector_id = $1 AND state = 'pending'
                   AND pending_day < ($2::timestamptz AT TIME ZONE 'Europe/Istanbul')::date), 0)
     + (SELECT count(*) FROM consents
        WHERE connector_id = $1 AND state = 'pending' AND source <> 'HS_2015' AND consent_date < $2
          AND consent_date >= (($2::timestamptz AT TIME ZONE 'Europe/Istanbul')::date)::timestamp AT TIME ZONE 'Europe/Istanbul');

-- name: Backlog
-- Pending and in-flight counts, and the seconds until the first pending is
-- due by ClaimBatch's rule. The counts are the kept ones (see
-- 0012_consent_counts.sql), and the due time is 0 as soon as one pending
-- record is due (the oldest come first in consents_pending), so that a
-- run ending with millions pending does not read them all: at 6,000,000
-- that took longer than a run's end may.
{{template "BacklogOf" "$1"}};

-- name: Backlogs
-- Backlog of each connector of $1 ($2 now, $3 the tolerance), one row each.
SELECT c.id AS connector_id, b.*
FROM unnest($1::bigint[]) AS c (id),
     LATERAL ({{template "BacklogOf" "c.id"}}) b;

-- fragment: BacklogOf
-- Backlog's columns for the connector the argument names.
SELECT coalesce((SELECT sum(n) FROM consent_counts WHERE connector_id = {{.}} AND state = 'pending'), 0)::bigint AS pending,
       coalesce((SELECT sum(n) FROM consent_counts WHERE connector_id = {{.}} AND state = 'in_flight'), 0)::bigint AS in_flight,
       CASE WHEN EXISTS (SELECT FROM consents WHERE connector_id = {{.}} AND state = 'pending'
                         AND next_attempt_at <= now() AND NOT {{early 2 3}})
            THEN 0::float8
            ELSE coalesce((SELECT min(CASE WHEN {{early 2 3}}
                                           THEN greatest(extract(epoch FROM next_attempt_at - now()),
                                                         extract(epoch FROM consent_date - $2::timestamptz))
                                           ELSE extract(epoch FROM next_attempt_at - now()) END)::float8
                           FROM consents WHERE connector_id = {{.}} AND state = 'pending'), 0) END AS due_in

-- name: ClaimBatch
-- Takes the oldest due pending records of connector $1, at most $3, skipping
-- those another claim holds, and makes them one batch of run $2, in one
-- statement: the batch row, the records in flight in it (returned whole), and
-- its items with the versions claimed. The consents key is unique, so a batch
-- never holds a key twice. A record is due once its next try's time (the
-- database's clock) has come, unless it waits for its date ($4 now, $5 the
-- tolerance: see early). Only records after ($6, $7) in claim order are
-- taken (consent.ClaimPos).
WITH picked AS (
    SELECT id FROM consents
    WHERE connector_id = $1 AND state = 'pending' AND next_attempt_at <= now() AND NOT {{early 4 5}}
      AND (consent_date, id) > ($6::timestamptz, $7::bigint)
    ORDER BY consent_date, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
),
batch AS (
    INSERT INTO batches (connector_id, run_id, size)
    SELECT $1, $2, count(*) FROM picked HAVING count(*) > 0
    RETURNING id
),
claimed AS (
    UPDATE consents c SET state = 'in_flight', batch_id = batch.id, updated_at = now()
    FROM picked, batch
    WHERE c.id = picked.id
    RETURNING {{columns "consents" "c"}}
),
items AS (
    INSERT INTO batch_items (batch_id, consent_id, version)
    SELECT batch_id, id, version FROM claimed
)
SELECT * FROM claimed ORDER BY consent_date, id;

-- name: LockBatch
-- Locks the records ($2) still in flight in batch $1, in key order, before
-- FinishBatch writes them: an UPDATE's join follows no order.
SELECT c.id FROM consents c
WHERE c.id = ANY($2::bigint[]) AND c.state = 'in_flight' AND c.batch_id = $1
ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
FOR NO KEY UPDATE;

-- name: FinishBatch
-- Every verdict of batch $1 in one statement, guarded: only a record still
-- in flight in this batch at the version sent changes, and gets its event
-- (kind verdict, with the request and subrequest ids).
WITH done AS (
UPDATE consents c SET
    state           = v.state,
    outcome         = NULLIF(v.outcome, ''),
    iys_code        = NULLIF(v.code, ''),
    iys_message     = NULLIF(v.message, ''),
    transaction_id  = NULLIF(v.txn, ''),
    attempts        = c.attempts + CASE WHEN v.tried THEN 1 ELSE 0 END,
    next_attempt_at = CASE WHEN v.state = 'pending' THEN now() + make_interval(secs => v.retry_secs)
                           ELSE c.next_attempt_at END,
    synced_at       = CASE WHEN v.state = 'synced' THEN now() ELSE NULL END,
    updated_at      = now(),
    event_seq       = c.event_seq + 1,
    event_hash      = consent_event_hash(c.event_hash, c.event_seq + 1, now(), 'verdict', c.origin, c.status,
                                         c.consent_date, c.source, c.recipient_type, c.external_id, c.version,
                                         v.state, NULL, b.request_id, bi.subrequest_id, NULLIF(v.txn, ''), NULL,
                                         NULLIF(v.outcome, ''), NULLIF(v.code, ''), NULLIF(v.message, ''))
FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::bool[], $10::float8[])
     AS v(id, version, state, outcome, code, message, txn, tried, retry_secs)
JOIN batch_items bi ON bi.batch_id = $1 AND bi.consent_id = v.id
JOIN batches b ON b.id = $1
WHERE c.id = v.id AND c.version = v.version AND c.state = 'in_flight' AND c.batch_id = $1
RETURNING c.*, b.request_id AS sent_request_id, bi.subrequest_id AS sent_subrequest_id
), events AS (
    INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                                external_id, version, state, request_id, subrequest_id, transaction_id, outcome,
                                iys_code, iys_message, hash)
    SELECT id, event_seq, now(), 'verdict', origin, status, consent_date, source, recipient_type, external_id,
           version, state, sent_request_id, sent_subrequest_id, transaction_id, outcome, iys_code, iys_message,
           event_hash
    FROM done
)
SELECT id FROM done;

-- name: ReleaseClaimed
-- Releases connector $1's batches claimed without a requestId, and puts
-- their records back to pending, locked first in key order; counts them.
WITH b AS (
    UPDATE batches SET state = 'released', finished_at = now()
    WHERE connector_id = $1 AND state = 'claimed'
    RETURNING id
), locked AS MATERIALIZED (
    SELECT c.id FROM b JOIN batch_items bi ON bi.batch_id = b.id JOIN consents c ON c.id = bi.consent_id
    WHERE c.state = 'in_flight' AND c.batch_id = b.id
    ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
    FOR NO KEY UPDATE OF c
), r AS (
    UPDATE consents c SET state = 'pending', updated_at = now()
    FROM locked WHERE c.id = locked.id
    RETURNING 1
)
SELECT count(*) FROM r;

-- name: Resend
-- Puts synced records ($2 ids at $3 versions) back to pending. The version
-- guard skips a record changed since it was read (a newer import, a pull);
-- only records of a brand source (HS_*) can be sent again. The records are
-- locked first, in key order. Returns the records requeued, for their
-- events (recordEvents).
WITH locked AS MATERIALIZED (
    SELECT c.id FROM consents c JOIN unnest($2::bigint[], $3::bigint[]) AS v(id, version)
                                 ON c.id = v.id AND c.version = v.version
    WHERE c.connector_id = $1 AND c.state = 'synced' AND c.source LIKE 'HS\_%'
    ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
    FOR NO KEY UPDATE OF c
)
UPDATE consents c SET state = 'pending', outcome = NULL, iys_code = NULL, iys_message = NULL, transaction_id = NULL,
    attempts = 0, next_attempt_at = now(), updated_at = now(), synced_at = NULL
FROM locked WHERE c.id = locked.id
RETURNING c.id;

-- name: ApplyChanges
-- Applies a page of İYS's changes newest-wins: per key the latest change of
-- the page, and only where it is newer than our record. A newer one replaces
-- the record as synced with outcome from_iys, bumping its version so that a
-- result for the old version in flight is not written. Ours, when newer,
-- stays and goes to İYS. The upsert takes its rows in key order. Each
-- record written gets its event: kind $9 (iys for the pull, reconcile for
-- the day files), origin $9:SOURCE (İYS's source of the change).
WITH incoming AS (
    SELECT DISTINCT ON (recipient, recipient_type, type) *, $9 || ':' || source AS origin
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[],
                $10::timestamptz[])
         AS c(recipient, recipient_type, type, status, consent_date, source, transaction_id, creation_date)
    ORDER BY recipient, recipient_type, type, consent_date DESC
), applied AS (
    INSERT INTO consents AS c (connector_id, recipient, recipient_type, type, status, consent_date, source,
                               state, outcome, transaction_id, synced_at, origin, event_seq, event_hash)
    SELECT $1, recipient, recipient_type, type, status, consent_date, source, 'synced', 'from_iys', transaction_id, now(),
           origin, 1,
           consent_event_hash(NULL, 1, now(), $9, origin, status, consent_date, source, recipient_type, '', 1,
                              'synced', NULL, NULL, NULL, NULLIF(transaction_id, ''), creation_date, 'from_iys', NULL, NULL)
    FROM incoming
    ORDER BY recipient, recipient_type, type
    ON CONFLICT (connector_id, recipient, recipient_type, type) DO UPDATE SET
        status = excluded.status, consent_date = excluded.consent_date, source = excluded.source,
        version = c.version + 1, state = 'synced', outcome = 'from_iys', iys_code = NULL, iys_message = NULL,
        transaction_id = excluded.transaction_id, attempts = 0, next_attempt_at = now(), batch_id = NULL,
        updated_at = now(), synced_at = now(), origin = excluded.origin, event_seq = c.event_seq + 1,
        event_hash = consent_event_hash(c.event_hash, c.event_seq + 1, now(), $9, excluded.origin, excluded.status,
                                        excluded.consent_date, excluded.source, c.recipient_type, c.external_id,
                                        c.version + 1, 'synced', NULL, NULL, NULL,
                                        NULLIF(excluded.transaction_id, ''),
                                        (SELECT i.creation_date FROM incoming i
                                         WHERE i.recipient = excluded.recipient
                                           AND i.recipient_type = excluded.recipient_type AND i.type = excluded.type),
                                        'from_iys', NULL, NULL)
    WHERE excluded.consent_date > c.consent_date
    RETURNING c.*, c.xmax = 0 AS inserted
), {{template "CountInserted" "applied"}}, events AS (
    INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                                external_id, version, state, transaction_id, creation_date, outcome, hash)
    SELECT a.id, a.event_seq, now(), $9, a.origin, a.status, a.consent_date, a.source, a.recipient_type,
           a.external_id, a.version, a.state, NULLIF(a.transaction_id, ''), i.creation_date, a.outcome, a.event_hash
    FROM applied a
    JOIN incoming i ON i.recipient = a.recipient AND i.recipient_type = a.recipient_type AND i.type = a.type
)
SELECT count(*) FROM applied;

-- name: Redrive
-- Puts connector $1's records in states $2 back to pending: of outcomes $3
-- only when $3 is not empty, and whose verdict was written at $4 or later
-- when $4 is not NULL. Tries are reset and the version bumped, so that no
-- answer to an earlier send is written over them. Locked first in key
-- order; counts them by outcome (a failed record by its state), with their
-- ids, for their events.
WITH locked AS MATERIALIZED (
    SELECT c.id, coalesce(c.outcome, c.state) AS outcome FROM consents c
    WHERE c.connector_id = $1 AND c.state = ANY($2::text[])
      AND (cardinality($3::text[]) = 0 OR c.outcome = ANY($3::text[]))
      AND ($4::timestamptz IS NULL OR c.updated_at >= $4::timestamptz)
    ORDER BY c.connector_id, c.recipient, c.recipient_type, c.type
    FOR NO KEY UPDATE OF c
), requeued AS (
    UPDATE consents c SET state = 'pending', outcome = NULL, iys_code = NULL, iys_message = NULL,
        transaction_id = NULL, attempts = 0, next_attempt_at = now(), version = c.version + 1,
        updated_at = now(), synced_at = NULL
    FROM locked WHERE c.id = locked.id
    RETURNING c.id, locked.outcome
)
SELECT outcome, count(*) AS n, array_agg(id) AS ids FROM requeued GROUP BY outcome ORDER BY outcome;

-- name: PurgeConsents
-- Deletes every record of connector $1 (uninstall --purge); counts them.
WITH gone AS (DELETE FROM consents WHERE connector_id = $1 RETURNING 1)
SELECT count(*) FROM gone;
