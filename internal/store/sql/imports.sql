-- imports: the audit of what each imported file (or intake request, or
-- read of a user-table source, one row per channel) did. Its row type is
-- importRow (import.go).

-- name: InsertImport
INSERT INTO imports (connector_id, path, channel, lines, blank, valid, rejected, superseded,
                     rows, inserted, updated, unchanged)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);
