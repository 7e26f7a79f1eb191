-- reconciles: one row per connector per day reconciled. Its row type is
-- Reconcile (reconciles.go).

-- name: InsertReconcile
INSERT INTO reconciles (connector_id, day, mode, trigger, result, missing_here, status_differs, only_here_synced,
                        ours_newer_unsent, ours_newer_rejected, summary_mismatches, repaired, unrepaired, error)
VALUES ($1, $2::date, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULLIF($14, ''))
RETURNING {{columns "reconciles"}};

-- name: LastReconcile
SELECT {{columns "reconciles"}} FROM reconciles
WHERE connector_id = $1 ORDER BY finished_at DESC, id DESC LIMIT 1;
