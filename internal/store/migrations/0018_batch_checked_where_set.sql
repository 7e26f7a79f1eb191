-- 0018: a record's batch is checked where it is set, not on every insert.
-- The foreign key consents_batch (0002) queued its check for every record
-- inserted, although an insert never sets a batch: 0.5-0.9 s of a COPY of a
-- million records (median 8.47 s against 7.73 s, 4 alternating runs), and
-- as much in the merge's inserts. Only a claim sets a record's batch
-- (ClaimBatch, to the batch it has just inserted). The triggers below check
-- what the key checked, where a batch is set: an insert with one, or an
-- update that changes it; they take the batch FOR KEY SHARE as the key did.
-- The other side stays held: a batch cannot be deleted while batch_items
-- names it, and a claim writes a batch's items with the batch.
ALTER TABLE consents DROP CONSTRAINT consents_batch;

CREATE FUNCTION consents_batch_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM batches WHERE id = NEW.batch_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record % names batch %, which does not exist', NEW.id, NEW.batch_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER consents_batch_inserted AFTER INSERT ON consents
    FOR EACH ROW WHEN (NEW.batch_id IS NOT NULL) EXECUTE FUNCTION consents_batch_exists();

CREATE TRIGGER consents_batch_updated AFTER UPDATE OF batch_id ON consents
    FOR EACH ROW WHEN (NEW.batch_id IS NOT NULL AND NEW.batch_id IS DISTINCT FROM OLD.batch_id)
    EXECUTE FUNCTION consents_batch_exists();
