-- consent_events: the history of the records, append-only, a hash chain per
-- record (0011_consent_events.sql). Its row type is Event (events.go). The
-- import's merge (staging.sql), the pull (ApplyChanges) and the batches'
-- statements (consents.sql, batches.sql) write their events themselves.

-- name: AppendEvents
-- One event of kind $2 per record of $1, with its values as they are, and
-- the record's head moved to it; origin $3, or the value's origin if ''.
-- The caller has locked the records in key order.
WITH head AS (
    UPDATE consents c SET event_seq = c.event_seq + 1,
        event_hash = consent_event_hash(c.event_hash, c.event_seq + 1, now(), $2, coalesce(NULLIF($3, ''), c.origin),
                                        c.status, c.consent_date, c.source, c.recipient_type, c.external_id,
                                        c.version, c.state, NULL, NULL, NULL, c.transaction_id, NULL, c.outcome,
                                        c.iys_code, c.iys_message)
    WHERE c.id = ANY($1::bigint[])
    RETURNING c.*
)
INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
                            external_id, version, state, transaction_id, outcome, iys_code, iys_message, hash)
SELECT id, event_seq, now(), $2, coalesce(NULLIF($3, ''), origin), status, consent_date, source, recipient_type,
       external_id, version, state, transaction_id, outcome, iys_code, iys_message, event_hash
FROM head;

-- name: VerifyChains
-- Walks the chains of connector $1's records and returns those whose history
-- does not hold: per record, the first event whose hash is not the hash of
-- its content and of the event before it (edited, or inserted by hand), the
-- first event that does not follow its predecessor's seq (one deleted
-- before it), the last event against the head the record holds (events
-- deleted or added at the end), and whether the record's value is its last
-- value event's (changed without an event). A chain that retention cut
-- (consent_event_cuts) starts after the last event it deleted: a line that lost to a newer
-- record (outcome superseded) set no value. Then the records and events
-- walked, in a last row of id 0.
WITH ev AS (
    SELECT e.*, coalesce(lag(e.seq) OVER w, k.seq) AS prev_seq,
           e.hash = consent_event_hash(coalesce(lag(e.hash) OVER w, k.hash), e.seq, e.at, e.kind, e.origin, e.status,
                                       e.consent_date, e.source, e.recipient_type, e.external_id, e.version,
                                       e.state, e.import_id, e.request_id, e.subrequest_id, e.transaction_id,
                                       e.creation_date, e.outcome, e.iys_code, e.iys_message) AS ok
    FROM consents c JOIN consent_events e ON e.consent_id = c.id
    LEFT JOIN consent_event_cuts k ON k.consent_id = c.id
    WHERE c.connector_id = $1
    WINDOW w AS (PARTITION BY e.consent_id ORDER BY e.seq)
), per AS (
    SELECT consent_id, count(*) AS events, max(seq) AS last_seq,
           min(seq) FILTER (WHERE NOT ok) AS first_bad,
           min(seq) FILTER (WHERE seq <> coalesce(prev_seq, 0) + 1) AS first_gap,
           (array_agg(hash ORDER BY seq DESC))[1] AS last_hash,
           (array_agg(ARRAY[status, (extract(epoch FROM consent_date) * 1000000)::bigint::text, source,
                            recipient_type, external_id, version::text]
                      ORDER BY seq DESC) FILTER (WHERE kind NOT IN ('sent', 'verdict', 'requeued')
                                              AND outcome IS DISTINCT FROM 'superseded'))[1:1] AS last_value
    FROM ev GROUP BY consent_id
), checked AS (
    SELECT c.id, c.recipient, c.recipient_type, c.type, c.event_seq, p.first_bad, p.first_gap,
           coalesce(p.last_seq, k.seq, 0) AS last_seq, coalesce(p.events, 0) AS events,
           c.event_hash IS NOT DISTINCT FROM coalesce(p.last_hash, k.hash) AS head_ok,
           p.last_value IS NULL
           OR p.last_value = ARRAY[ARRAY[c.status, (extract(epoch FROM c.consent_date) * 1000000)::bigint::text,
                                         c.source, c.recipient_type, c.external_id, c.version::text]] AS value_ok
    FROM consents c LEFT JOIN per p ON p.consent_id = c.id LEFT JOIN consent_event_cuts k ON k.consent_id = c.id
    WHERE c.connector_id = $1
)
SELECT id, recipient, recipient_type, type, event_seq, first_bad, first_gap, last_seq, head_ok, value_ok
FROM checked
WHERE first_bad IS NOT NULL OR first_gap IS NOT NULL OR event_seq <> last_seq OR NOT head_ok OR NOT value_ok
UNION ALL
SELECT 0, '', '', '', count(*)::int, NULL, NULL, coalesce(sum(events), 0)::int, true, true FROM checked
ORDER BY id;

-- name: EventsOfRecipient
-- The events of connector $1's records of recipient $2 (of type $3, or all
-- if ''), oldest first.
SELECT c.type AS "type", {{columns "consent_events" "e"}}
FROM consents c JOIN consent_events e ON e.consent_id = c.id
WHERE c.connector_id = $1 AND c.recipient = $2 AND ($3 = '' OR c.type = $3)
ORDER BY e.at, e.consent_id, e.seq;

-- name: PruneEvents
-- Retention: of every record that stopped being valid before $1 (a RET
-- dated before it), the events written before $1 go, as a prefix of its
-- chain: up to the last of them by seq. Where each chain was cut is kept
-- (consent_event_cuts). $2: only count. The records and the events.
WITH cut AS (
    SELECT e.consent_id, max(e.seq) AS seq
    FROM consents c JOIN consent_events e ON e.consent_id = c.id
    WHERE c.status = 'RET' AND c.consent_date < $1 AND e.at < $1
    GROUP BY e.consent_id
), last AS (
    SELECT cut.consent_id, cut.seq, e.hash
    FROM cut JOIN consent_events e ON e.consent_id = cut.consent_id AND e.seq = cut.seq
), noted AS (
    INSERT INTO consent_event_cuts (consent_id, seq, hash, cut_at)
    SELECT consent_id, seq, hash, now() FROM last WHERE NOT $2
    ON CONFLICT (consent_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, cut_at = excluded.cut_at
), gone AS (
    SELECT e.consent_id, e.seq FROM consent_events e JOIN cut ON e.consent_id = cut.consent_id AND e.seq <= cut.seq
), deleted AS (
    DELETE FROM consent_events e USING gone
    WHERE NOT $2 AND e.consent_id = gone.consent_id AND e.seq = gone.seq
)
SELECT (SELECT count(*) FROM cut), (SELECT count(*) FROM gone);

-- name: LockRecipient
-- The records of connector $1's recipient $2, locked in key order, with
-- what forget decides by.
SELECT id, status, consent_date, state FROM consents
WHERE connector_id = $1 AND recipient = $2
ORDER BY connector_id, recipient, recipient_type, type
FOR UPDATE;

-- name: ForgetRecords
-- Erases records $1 of connector $2 and their history (events, the cut, the
-- record), their entries in the changes feed, and the connector's
-- quarantined feed entries whose text holds $3 (the recipient in lower
-- case, a phone without its +, as İYS may write it). Counts the feed's and
-- the quarantine's rows erased.
WITH e AS (
    DELETE FROM consent_events WHERE consent_id = ANY($1::bigint[])
), k AS (
    DELETE FROM consent_event_cuts WHERE consent_id = ANY($1::bigint[])
), r AS (
    DELETE FROM consents WHERE id = ANY($1::bigint[])
), f AS (
    DELETE FROM changes WHERE connector_id = $2 AND consent_id = ANY($1::bigint[]) RETURNING 1
), q AS (
    DELETE FROM pull_quarantine WHERE connector_id = $2 AND strpos(lower(raw), $3) > 0 RETURNING 1
)
SELECT (SELECT count(*) FROM f) AS feed, (SELECT count(*) FROM q) AS quarantined;
