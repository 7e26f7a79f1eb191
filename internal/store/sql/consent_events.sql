-- consent_events: the history of the records, append-only, a hash chain per
-- record (0010_consent_events.sql). Its row type is Event (events.go). The
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
