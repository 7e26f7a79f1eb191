package store

import (
	"context"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pgtemp"
	"github.com/iys-sync/iys-sync/internal/pgtest"
)

// TestStoreOutlivesServerRestart: after PostgreSQL restarts, the pool's
// connections are dead; the store must work again without being reopened.
func TestStoreOutlivesServerRestart(t *testing.T) {
	s, cluster := storeOnCluster(t)
	ctx := context.Background()
	c := install(t, s, "B")
	importRows(t, s, c.ID, sms(t, 1, phoneA, consent.StatusOnay, "15.05.2025 14:00:00"))

	if err := cluster.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	states, _, err := s.Counts(ctx, c.ID)
	if err != nil {
		t.Fatalf("first call after the restart: %v", err)
	}
	if states[consent.StatePending] != 1 {
		t.Fatalf("pending = %d after restart, want 1", states[consent.StatePending])
	}
	if res := importRows(t, s, c.ID, sms(t, 1, phoneB, consent.StatusOnay, "15.05.2025 14:00:00")); res.Inserted != 1 {
		t.Fatalf("import after restart = %+v", res)
	}
}

// storeOnCluster opens a store on a throwaway cluster of its own, which the
// test may restart.
func storeOnCluster(t *testing.T) (*Store, *pgtemp.Cluster) {
	t.Helper()
	cluster := pgtest.Cluster(t)
	s, err := Open(context.Background(), cluster.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cluster
}
