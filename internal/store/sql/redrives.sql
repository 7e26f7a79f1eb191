-- redrives: each redrive of a connector's failed or rejected records. Its
-- row type is redriveRow (redrive.go). The redrive itself is in consents.sql.

-- name: RecordRedrive
INSERT INTO redrives (connector_id, operator, states, outcomes, since, requeued)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: Redrives
SELECT {{columns "redrives"}} FROM redrives WHERE connector_id = $1 ORDER BY redriven_at, id;
