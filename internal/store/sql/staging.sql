-- The import path (files, the intake, the user-table source): rows are
-- COPYed into a temporary staging table, import_rows, then merged into
-- consents newest-wins in one statement. The user-table source first
-- spools its rows into source_spool, a temporary table of its own session.
-- A file that is a connector's first records, with no key twice, skips the
-- staging table: it is COPYed into consents (CopyRecords). The import was
-- measured against a bare COPY (README's Performance): keep it to COPY and
-- one merge statement, or to COPY and the copied records' events.

-- fragment: StagingColumns
-- The staged rows' columns, in the order copyWriter.staged writes them
-- (copy.go): the COPYs below name no columns.
seq            bigint,
line           int,
recipient      text,
recipient_type text,
type           text,
status         text,
consent_date   timestamptz,
source         text,
external_id    text,
event_hash     bytea  -- the hash of the event of a record the row creates; NULL: the merge computes it

-- name: CreateStaging
-- One file's rows until the merge: temporary (no WAL, no other session sees
-- it) and dropped with the transaction.
CREATE TEMP TABLE import_rows (
{{template "StagingColumns"}}
) ON COMMIT DROP;

-- name: CopyStaging
COPY import_rows FROM STDIN;

-- name: CreateSpool
-- The user-table source's spool: like import_rows, but it outlives the
-- chunks' transactions (DropSpool first drops one an aborted read left).
CREATE TEMP TABLE source_spool (
{{template "StagingColumns"}}
);

-- name: DropSpool
DROP TABLE IF EXISTS pg_temp.source_spool;

-- name: CopySpool
COPY source_spool FROM STDIN;

-- name: StageSpool
INSERT INTO import_rows SELECT * FROM source_spool;

-- fragment: Staged
-- The first step of the merge, shared by every statement that must judge
-- the staged rows exactly as the merge does (the merge itself, the intake's
-- per-item verdicts, the user-table source's counts): each row, whether it
-- wins its record within the file (latest consent date, then the later
-- line, then the later row), the stored record it meets, and whether it is
-- identical to it. $1 is the connector. The rows are sorted once, in the
-- window's order: the merge join with consents_key keeps it, so the window
-- needs no second (incremental) sort.
WITH staged AS (
    SELECT s.line, s.recipient, s.recipient_type, s.type, s.status, s.consent_date, s.source, s.external_id,
           s.event_hash AS staged_hash,
           row_number() OVER (PARTITION BY s.recipient, s.recipient_type, s.type
                              ORDER BY s.consent_date DESC, s.line DESC, s.seq DESC) = 1 AS winner,
           c.id AS stored_id,
           c.consent_date AS stored_date,
           coalesce(c.consent_date = s.consent_date AND c.status = s.status
                    AND c.source = s.source AND c.external_id = s.external_id, false) AS same
    FROM (SELECT * FROM import_rows
          ORDER BY recipient, recipient_type, type, consent_date DESC, line DESC, seq DESC) s
    LEFT JOIN consents c
           ON c.connector_id = $1 AND c.recipient = s.recipient
          AND c.recipient_type = s.recipient_type AND c.type = s.type
)

-- fragment: Newer
-- In an upsert of consents (c) from staged rows: the row is newer than the
-- record as locked, or as new and different.
(EXCLUDED.consent_date > c.consent_date
 OR (EXCLUDED.consent_date = c.consent_date
     AND (EXCLUDED.status, EXCLUDED.source, EXCLUDED.external_id)
         IS DISTINCT FROM (c.status, c.source, c.external_id)))

-- fragment: Origin
-- A staged row's origin (see MergeWrites): file:NAME:LINE, api:TOKEN:ITEM
-- (from 0) or source:BRAND:EXTERNAL_ID. eventStamp.originOf (eventhash.go)
-- makes the same in Go, for the hash the file import and the intake stage.
$4 || ':' || CASE $3 WHEN 'source' THEN external_id WHEN 'api' THEN (line - 1)::text ELSE line::text END

-- fragment: MergeWrites
-- The writes of the merge, one statement with Staged, so that every part
-- sees the records as they were before it. $1 is the connector, $2 the fast
-- path; $3 to $6 say where the rows came from, for their events: the kind
-- (file, api, source), the origin's prefix (file:NAME, api:TOKEN,
-- source:BRAND), the imports row and the intake's request id.
--
--   - staged: Staged.
--   - path: whether the fast path runs: $2, and the merge writes no stored
--     record (only new ones).
--   - fresh (fast path only): winners whose record did not exist, by plain
--     INSERT. Speculative insertion (ON CONFLICT) costs a quarter of a large
--     first import; if a concurrent writer inserted one of these keys
--     meanwhile, the statement fails on consents_key and merge runs it
--     again with $2 = false.
--   - written (off the fast path only): the winners that differ from the
--     stored record, upserted. Newer, tested against the row as
--     locked (a concurrent writer may have changed it), decides: a newer
--     consent resets the record to pending whatever its state, and the
--     version bump keeps an in-flight result from landing on it; an older
--     one only moves the record's event head, so that the line that lost
--     has its event (outcome superseded) in the same pass, in key order.
--     applied tells them apart: only a record written has updated_at now()
--     (the merge is the one writer of consents in its transaction).
--   - events: one consent_events row per record written, and one per line
--     that lost to a newer stored record, its hash chained to the head the
--     record held as locked (see 0011_consent_events.sql). The origin
--     (Origin) names the line (file, api) or the user (source); the record
--     keeps it, so that the upsert's DO UPDATE can hash it. A line that
--     lost to a later line of the same input, or equals the stored record,
--     has no event. The file import and the intake stage the hash of the
--     first event of a record each row would create (computed in Go as the
--     rows stream, see eventhash.go): a record created takes it, and only
--     the rest is hashed here. The origin is not staged: made here from the
--     line, it costs less than parsing it (0.2 s of a 1M-line import).
--   - fresh_counted, written_counted: the records inserted, added to the
--     kept counts (CountInserted).
--
-- fresh and written take their rows in key order, as every writer of
-- consents does (see retry.go), and never both: a plain INSERT of new keys
-- and an upsert of stored ones would lock in two passes, out of that order.
-- fresh reads staged in the order Staged's window made it, key first: a
-- sort of its own would be the import's second sort of every row (test:
-- TestFreshRecordsAreInsertedInKeyOrder). The path is a one-time filter,
-- so that only one of them reads staged, and the superseded lines' events
-- join staged only when there are some.
-- Both return the key written, whether it was inserted (xmax = 0: no
-- transaction has updated the row) and whether its value was written
-- (applied), then what events needs.
{{template "Staged"}},
path AS (
    SELECT $2 AND NOT EXISTS (SELECT FROM staged WHERE winner AND stored_id IS NOT NULL AND NOT same) AS fast
),
fresh AS (
    INSERT INTO consents (connector_id, recipient, recipient_type, type, status, consent_date, source, external_id,
                          origin, event_seq, event_hash)
    SELECT $1, recipient, recipient_type, type, status, consent_date, source, external_id, origin, 1,
           coalesce(staged_hash,
                    consent_event_hash(NULL, 1, now(), $3, origin, status, consent_date, source, recipient_type,
                                       external_id, 1, 'pending', $5, NULLIF($6, ''), NULL, NULL, NULL, NULL, NULL, NULL))
    FROM (SELECT *, {{template "Origin"}} AS origin
          FROM staged) staged
    WHERE (SELECT fast FROM path) AND winner AND stored_id IS NULL
    RETURNING recipient, recipient_type, type, true AS inserted, true AS applied,
              id, status, consent_date, source, external_id, origin, version, state, event_seq, event_hash,
              connector_id, outcome
),
{{template "CountInserted" "fresh"}},
written AS (
    INSERT INTO consents AS c (connector_id, recipient, recipient_type, type, status, consent_date, source, external_id,
                               origin, event_seq, event_hash)
    SELECT $1, recipient, recipient_type, type, status, consent_date, source, external_id, origin, 1,
           coalesce(staged_hash,
                    consent_event_hash(NULL, 1, now(), $3, origin, status, consent_date, source, recipient_type,
                                       external_id, 1, 'pending', $5, NULLIF($6, ''), NULL, NULL, NULL, NULL, NULL, NULL))
    FROM (SELECT *, {{template "Origin"}} AS origin
          FROM staged) staged
    WHERE NOT (SELECT fast FROM path) AND winner AND NOT same
    ORDER BY recipient, recipient_type, type
    ON CONFLICT (connector_id, recipient, recipient_type, type) DO UPDATE SET
        status          = CASE WHEN {{template "Newer"}} THEN EXCLUDED.status ELSE c.status END,
        consent_date    = CASE WHEN {{template "Newer"}} THEN EXCLUDED.consent_date ELSE c.consent_date END,
        source          = CASE WHEN {{template "Newer"}} THEN EXCLUDED.source ELSE c.source END,
        external_id     = CASE WHEN {{template "Newer"}} THEN EXCLUDED.external_id ELSE c.external_id END,
        version         = CASE WHEN {{template "Newer"}} THEN c.version + 1 ELSE c.version END,
        state           = CASE WHEN {{template "Newer"}} THEN 'pending' ELSE c.state END,
        outcome         = CASE WHEN {{template "Newer"}} THEN NULL ELSE c.outcome END,
        iys_code        = CASE WHEN {{template "Newer"}} THEN NULL ELSE c.iys_code END,
        iys_message     = CASE WHEN {{template "Newer"}} THEN NULL ELSE c.iys_message END,
        transaction_id  = CASE WHEN {{template "Newer"}} THEN NULL ELSE c.transaction_id END,
        batch_id        = CASE WHEN {{template "Newer"}} THEN NULL ELSE c.batch_id END,
        attempts        = CASE WHEN {{template "Newer"}} THEN 0 ELSE c.attempts END,
        next_attempt_at = CASE WHEN {{template "Newer"}} THEN now() ELSE c.next_attempt_at END,
        updated_at      = CASE WHEN {{template "Newer"}} THEN now() ELSE c.updated_at END,
        synced_at       = CASE WHEN {{template "Newer"}} THEN NULL ELSE c.synced_at END,
        origin          = CASE WHEN {{template "Newer"}} THEN EXCLUDED.origin ELSE c.origin END,
        event_seq       = c.event_seq + 1,
        event_hash      = consent_event_hash(c.event_hash, c.event_seq + 1, now(), $3, EXCLUDED.origin,
                              EXCLUDED.status, EXCLUDED.consent_date, EXCLUDED.source, c.recipient_type,
                              EXCLUDED.external_id,
                              CASE WHEN {{template "Newer"}} THEN c.version + 1 ELSE c.version END,
                              CASE WHEN {{template "Newer"}} THEN 'pending' ELSE c.state END, $5, NULLIF($6, ''),
                              NULL, NULL, NULL, CASE WHEN {{template "Newer"}} THEN NULL ELSE 'superseded' END,
                              NULL, NULL)
    WHERE NOT (EXCLUDED.consent_date = c.consent_date
               AND (EXCLUDED.status, EXCLUDED.source, EXCLUDED.external_id)
                   IS NOT DISTINCT FROM (c.status, c.source, c.external_id))
    RETURNING c.recipient, c.recipient_type, c.type, c.xmax = 0 AS inserted, c.updated_at = now() AS applied,
              c.id, c.status, c.consent_date, c.source, c.external_id, c.origin, c.version, c.state,
              c.event_seq, c.event_hash, c.connector_id, c.outcome
),
{{template "CountInserted" "written"}},
events AS (
    INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                                external_id, version, state, import_id, request_id, outcome, hash)
    SELECT w.id, w.event_seq, now(), $3, s.origin, s.status, s.consent_date, s.source, w.recipient_type,
           s.external_id, w.version, w.state, $5, NULLIF($6, ''), 'superseded', w.event_hash
    FROM written w
    JOIN (SELECT *, {{template "Origin"}} AS origin
          FROM staged WHERE winner) s
      ON s.recipient = w.recipient AND s.recipient_type = w.recipient_type AND s.type = w.type
    WHERE NOT w.applied AND EXISTS (SELECT FROM written WHERE NOT applied)
    UNION ALL
    SELECT id, event_seq, now(), $3, origin, status, consent_date, source, recipient_type, external_id, version,
           'pending', $5, NULLIF($6, ''), NULL, event_hash
    FROM (SELECT * FROM fresh UNION ALL SELECT * FROM written WHERE applied) w
)

-- name: MergeStaging
-- The merge of a file: MergeWrites, counted. Distinct records, superseded
-- lines (a row that lost, unless it equals the stored record), inserted and
-- updated records.
{{template "MergeWrites"}}
SELECT k.keys, k.superseded, f.inserted + w.inserted, w.updated
FROM (SELECT count(*) FILTER (WHERE winner) AS keys,
             count(DISTINCT line) FILTER (WHERE (NOT winner OR stored_date > consent_date) AND NOT same) AS superseded
      FROM staged) k,
     (SELECT count(*) AS inserted FROM fresh) f,
     (SELECT count(*) FILTER (WHERE inserted) AS inserted,
             count(*) FILTER (WHERE applied AND NOT inserted) AS updated
      FROM written) w;

-- name: MergeItems
-- The merge of an intake request: MergeWrites, with each row's verdict, in
-- line order. A winner whose record the merge wrote is accepted; a row
-- identical to the stored record is unchanged; any other lost, to a later
-- row of the request or to a newer stored record, be it one a concurrent
-- writer stored meanwhile (the DO UPDATE guard). Since the verdicts are what
-- the merge did, they cannot disagree with it.
{{template "MergeWrites"}}
SELECT s.line,
       CASE WHEN w.inserted IS NOT NULL THEN 'accepted' WHEN s.same THEN 'unchanged' ELSE 'superseded' END,
       s.winner, coalesce(w.inserted, false)
FROM staged s
LEFT JOIN (SELECT recipient, recipient_type, type, inserted FROM fresh
           UNION ALL SELECT recipient, recipient_type, type, inserted FROM written WHERE applied) w
       ON s.winner AND w.recipient = s.recipient AND w.recipient_type = s.recipient_type AND w.type = s.type
ORDER BY s.line;

-- name: SourceChannelCounts
-- Staged (as MergeItems), counted per channel with the rules of the merge's
-- counts, read just before the merge.
{{template "Staged"}}
SELECT CASE WHEN type = 'EPOSTA' THEN 'email' ELSE 'sms' END AS channel,
       count(*),
       count(*) FILTER (WHERE winner AND stored_id IS NULL),
       count(*) FILTER (WHERE winner AND stored_id IS NOT NULL AND NOT same AND consent_date >= stored_date),
       count(*) FILTER (WHERE winner),
       count(DISTINCT line) FILTER (WHERE (NOT winner OR stored_date > consent_date) AND NOT same)
FROM staged
GROUP BY 1;

-- name: HasRecords
SELECT EXISTS (SELECT FROM consents WHERE connector_id = $1);

-- name: CopyRecords
-- A file's rows straight into consents, in the order copyWriter.record
-- (copy.go) writes them: the first file of a connector, with no key twice (importFile).
-- The other columns take their defaults: pending, version 1.
COPY consents (connector_id, recipient, recipient_type, type, status, consent_date, source, external_id, origin,
               event_seq, event_hash) FROM STDIN;

-- name: CopiedRecordsEvents
-- After CopyRecords: the first event of every record of connector $1 (all
-- of them came from the COPY: the connector had none, and its lock kept
-- other writers out), as MergeWrites writes a created record's event: kind
-- $2, imports row $3, the hash the COPY stored. A statement of its own: with
-- the counts (CopiedRecordsCounted) in one, both read a materialized copy
-- of every record, which cost more than reading the records twice.
INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                            external_id, version, state, import_id, hash)
SELECT id, event_seq, now(), $2, origin, status, consent_date, source, recipient_type, external_id, version, state,
       $3, event_hash
FROM consents WHERE connector_id = $1;

-- name: CopiedRecordsCounted
-- After CopyRecords: the copied records (all pending) added to connector
-- $1's kept counts, from the rows counted per UTC hour as they streamed ($2
-- the hours' starts in seconds since 1970, $3 how many, $4 whether of
-- source HS_2015, which counts on no day): reading the records again cost
-- 0.6 s a million. An hour counts on its Türkiye day when it starts and ends
-- on that day, as every hour does since 1910 (whole-hour offsets); the
-- records of any other hour are counted one by one (consents_pending's
-- range).
WITH hours AS (
    SELECT start, n, source, consent_pending_day('pending', source, start) AS day,
           consent_pending_day('pending', source, start + interval '1 hour' - interval '1 microsecond') AS last_day
    FROM (SELECT to_timestamp(h) AS start, n, CASE WHEN hs THEN 'HS_2015' ELSE '' END AS source
          FROM unnest($2::bigint[], $3::bigint[], $4::bool[]) AS u(h, n, hs)) u
), days AS (
    SELECT day, n FROM hours WHERE day IS NOT DISTINCT FROM last_day
    UNION ALL
    SELECT consent_pending_day(c.state, c.source, c.consent_date), 1
    FROM hours h
    JOIN consents c ON c.connector_id = $1 AND c.state = 'pending'
                   AND c.consent_date >= h.start AND c.consent_date < h.start + interval '1 hour'
                   AND (c.source = 'HS_2015') = (h.source = 'HS_2015')
    WHERE h.day IS DISTINCT FROM h.last_day
)
INSERT INTO consent_counts (connector_id, state, outcome, pending_day, n)
SELECT $1, 'pending', NULL, day, sum(n) FROM days GROUP BY day;
