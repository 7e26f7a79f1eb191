-- imports: the audit of what each imported file (or intake request, or
-- read of a user-table source, one row per channel) did. Its row type is
-- importRow (import.go).

-- name: NextImportID
-- The id of an imports row to be written once the merge has counted: its
-- events name it before the row exists. And the transaction's time, their
-- time.
SELECT nextval(pg_get_serial_sequence('imports', 'id')), now();

-- name: InsertImport
-- $13 is the row's id, from NextImportID; 0 takes the next one.
INSERT INTO imports (id, connector_id, path, channel, lines, blank, valid, rejected, superseded,
                     rows, inserted, updated, unchanged)
VALUES (CASE WHEN $13::bigint > 0 THEN $13::bigint ELSE nextval(pg_get_serial_sequence('imports', 'id')) END,
        $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);
