-- pull_quarantine: the feed entries the pull could not read, as İYS sent
-- them. Its row type is quarantineRow (quarantine.go). raw holds personal
-- data: never log it.

-- name: Quarantine
-- Keeps entries ($3 raw, $4 reasons) of source $2; one held already is kept once.
INSERT INTO pull_quarantine (connector_id, source, raw, reason)
SELECT $1, $2, raw, reason FROM unnest($3::text[], $4::text[]) AS q(raw, reason)
ON CONFLICT (connector_id, source, md5(raw)) DO NOTHING;

-- name: CountQuarantined
SELECT count(*) FROM pull_quarantine WHERE connector_id = $1;

-- name: PurgeQuarantine
DELETE FROM pull_quarantine WHERE connector_id = $1;
