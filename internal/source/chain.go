package source

import (
	"context"
	"errors"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/redact"
)

// Puller is the engine's pre-push hook (sync.Puller).
type Puller interface {
	Pull(ctx context.Context, c consent.ConnectorRef, runID int64) error
}

// Chain runs several Pullers in the engine's one Puller slot, in order. Each
// runs even if one before it failed; their errors are joined, and scrubbed of
// the process's secrets: the engine logs them, stores them (runs.error) and
// prints them.
type Chain []Puller

// Pull runs each Puller of the chain.
func (ch Chain) Pull(ctx context.Context, c consent.ConnectorRef, runID int64) error {
	var errs []error
	for _, p := range ch {
		if p == nil {
			continue
		}
		if err := p.Pull(ctx, c, runID); err != nil {
			errs = append(errs, err)
		}
	}
	return redact.Error(errors.Join(errs...))
}
