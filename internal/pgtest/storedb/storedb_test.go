package storedb

import (
	"context"
	"database/sql"
	"testing"

	"github.com/iys-sync/iys-sync/internal/pgtest"
	"github.com/iys-sync/iys-sync/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A copy holds every migration, so that the store opens it as it is.
func TestNewDBHoldsTheSchema(t *testing.T) {
	url := NewDB(t)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var before int
	if err := db.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&before); err != nil || before == 0 {
		t.Fatalf("schema_migrations: %d rows, %v; want the migrations applied", before, err)
	}
	s, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var after int
	if err := db.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&after); err != nil || after != before {
		t.Fatalf("Open applied migrations: %d rows, then %d (%v)", before, after, err)
	}
}
