// Package storedb gives tests databases that hold the store's schema: each
// a copy of a template that store.Open migrated once per test binary, so
// that the store's Open on it finds nothing left to apply. Tests of the
// migrations themselves use pgtest.NewDB, an empty database.
//
// The test binary's TestMain calls pgtest.Main, as for pgtest.NewDB.
package storedb

import (
	"context"
	"testing"

	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/store"
)

var schema = pgtest.NewTemplate("store", func(ctx context.Context, url string) error {
	s, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	return s.Close()
})

// NewDB creates a database for this test holding the store's schema and no
// rows, and returns its URL. It is dropped when the test ends.
func NewDB(t testing.TB) string {
	t.Helper()
	return schema.NewDB(t)
}
