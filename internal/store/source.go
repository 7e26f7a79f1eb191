package store

import (
	"context"
	"fmt"
)

// SourceResult is what one read of a connector's user-table source did: the
// merge's counts, as ImportFile gives them, and the users that the source
// returned before but not this time.
type SourceResult struct {
	ImportResult
	Users       int // distinct external ids of this read's rows
	Disappeared int // users (external ids) seen by an earlier read and not by this one
}

// ImportSource stores the rows read from a connector's user-table source
// (internal/source) as pending consents, in one transaction, with the staging
// table, COPY and newest-wins merge of ImportFile; rows stream in, so memory
// does not grow with the source. Each row's Line is its user's 1-based
// position in the read, and every row carries the user's external id.
//
// Like ImportItems, it writes one imports row per channel ("email": EPOSTA
// rows, "sms": MESAJ and ARAMA), path being e.g. "source:BRAND"; counts is
// called once the rows are read, and its Valid must be the users that gave
// rows of the channel. The merge's counts are split per channel by the
// merge's own staged CTE, read just before it.
//
// The external ids of the rows are remembered (source_users); those of
// earlier reads that this read no longer has are counted in Disappeared and
// listed by SourceDisappeared. Nothing is deleted.
func (s *Store) ImportSource(ctx context.Context, connectorID int64, path string, counts func() []IntakeChannel, src RowSource) (SourceResult, error) {
	res, err := s.importSource(ctx, connectorID, path, counts, src)
	if err != nil {
		return SourceResult{}, fmt.Errorf("import source: %w", err)
	}
	return res, nil
}

// sourceChannelCounts is the merge's staged CTE (as mergeItems), counted
// per channel with the rules of the merge's counts.
const sourceChannelCounts = stagedCTE + `
SELECT CASE WHEN type = 'EPOSTA' THEN 'email' ELSE 'sms' END AS channel,
       count(*),
       count(*) FILTER (WHERE winner AND stored_id IS NULL),
       count(*) FILTER (WHERE winner AND stored_id IS NOT NULL AND NOT same AND consent_date >= stored_date),
       count(*) FILTER (WHERE winner),
       count(DISTINCT line) FILTER (WHERE (NOT winner OR stored_date > consent_date) AND NOT same)
FROM staged
GROUP BY 1`

func (s *Store) importSource(ctx context.Context, connectorID int64, path string, countsFn func() []IntakeChannel, src RowSource) (SourceResult, error) {
	tx, types, err := s.beginImport(ctx, connectorID)
	if err != nil {
		return SourceResult{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, untimed); err != nil {
		return SourceResult{}, err
	}
	n, _, err := copyRows(ctx, tx.Tx, types, src)
	if err != nil {
		return SourceResult{}, err
	}
	channels := countsFn()
	per := map[string]*ImportResult{}
	q, err := tx.QueryContext(ctx, sourceChannelCounts, connectorID)
	if err != nil {
		return SourceResult{}, fmt.Errorf("channel counts: %w", err)
	}
	for q.Next() {
		var ch string
		var p ImportResult
		var keys int
		if err := q.Scan(&ch, &p.Rows, &p.Inserted, &p.Updated, &keys, &p.SupersededLines); err != nil {
			q.Close()
			return SourceResult{}, fmt.Errorf("channel counts: %w", err)
		}
		p.Unchanged = keys - p.Inserted - p.Updated
		per[ch] = &p
	}
	q.Close()
	if err := q.Err(); err != nil {
		return SourceResult{}, fmt.Errorf("channel counts: %w", err)
	}
	m, err := merge(ctx, tx.Tx, connectorID, !s.upsertOnly)
	if err != nil {
		return SourceResult{}, err
	}
	res := SourceResult{ImportResult: ImportResult{Rows: n, Inserted: m.inserted, Updated: m.updated,
		Unchanged: m.keys - m.inserted - m.updated, SupersededLines: m.superseded}}
	if err := recordChannelImports(ctx, tx, connectorID, path, channels, per); err != nil {
		return SourceResult{}, err
	}
	// The users of this read, then those of earlier reads it has not.
	// now() is the transaction's start: the same for every statement here.
	if err := tx.QueryRowContext(ctx, `
		WITH seen AS (
		    INSERT INTO source_users (connector_id, external_id, seen_at)
		    SELECT DISTINCT $1::bigint, external_id, now() FROM import_rows WHERE external_id <> ''
		    ON CONFLICT (connector_id, external_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
		    RETURNING 1
		)
		SELECT (SELECT count(*) FROM seen),
		       (SELECT count(*) FROM source_users u
		        WHERE u.connector_id = $1 AND u.seen_at < now()
		          AND NOT EXISTS (SELECT 1 FROM import_rows s WHERE s.external_id = u.external_id))`,
		connectorID).Scan(&res.Users, &res.Disappeared); err != nil {
		return SourceResult{}, fmt.Errorf("source users: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE connectors SET source_read_at = now() WHERE id = $1`, connectorID); err != nil {
		return SourceResult{}, fmt.Errorf("source users: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return SourceResult{}, err
	}
	return res, nil
}

// SourceDisappeared lists (up to limit, by external id) the users that an
// earlier read of the connector's source returned and its last read did
// not, and counts all of them. Their consents are kept as they are.
func (s *Store) SourceDisappeared(ctx context.Context, connectorID int64, limit int) (int, []string, error) {
	const gone = `FROM source_users u JOIN connectors c ON c.id = u.connector_id
		WHERE u.connector_id = $1 AND c.source_read_at IS NOT NULL AND u.seen_at < c.source_read_at`
	var n int
	if err := s.db.GetContext(ctx, &n, "SELECT count(*) "+gone, connectorID); err != nil {
		return 0, nil, fmt.Errorf("source disappeared: %w", err)
	}
	ids := []string{}
	if err := s.db.SelectContext(ctx, &ids, "SELECT u.external_id "+gone+" ORDER BY u.external_id LIMIT $2", connectorID, limit); err != nil {
		return 0, nil, fmt.Errorf("source disappeared: %w", err)
	}
	return n, ids, nil
}
