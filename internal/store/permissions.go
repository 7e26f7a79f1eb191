package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Permission is what a record holds of one recipient's permission: its
// newest consent and where that stands with İYS (the record's state).
type Permission struct {
	Recipient   string
	Status      consent.Status
	ConsentDate consent.Date
	Source      consent.Source
	State       consent.State
}

// permissionsOf is sql/consents.sql's PermissionsOf.
var permissionsOf = stmt("PermissionsOf")

// Permissions reads the connector's records of the recipients (normalised
// as stored; repeats allowed) for one recipient type and type, in one
// statement, by recipient. A recipient with no record is absent.
func (s *Store) Permissions(ctx context.Context, connectorID int64, rt consent.RecipientType, typ consent.Type,
	recipients []string) (map[string]Permission, error) {
	rows, err := s.db.QueryxContext(ctx, permissionsOf, connectorID, string(rt), string(typ), pq.Array(recipients))
	if err != nil {
		return nil, fmt.Errorf("read permissions: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Permission, len(recipients))
	for rows.Next() {
		var p Permission
		if err := rows.Scan(&p.Recipient, &p.Status, &p.ConsentDate, &p.Source, &p.State); err != nil {
			return nil, fmt.Errorf("read permissions: %w", err)
		}
		out[p.Recipient] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read permissions: %w", err)
	}
	return out, nil
}
