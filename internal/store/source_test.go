package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A connector's source query is stored, and a repeated install follows
// install's rules: the same query changes nothing, another one conflicts.
func TestInstallSourceQuery(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	c := Connector{BrandCode: "600001", IYSCode: "700001", Channels: []consent.Type{consent.TypeMesaj},
		FirstSyncAt: time.Now(), SourceQuery: "SELECT * FROM users"}
	got, created, err := s.InstallConnector(ctx, c)
	if err != nil || !created || got.SourceQuery != c.SourceQuery {
		t.Fatalf("install: %+v %v %v", got, created, err)
	}
	if got, created, err := s.InstallConnector(ctx, c); err != nil || created || got.SourceQuery != c.SourceQuery {
		t.Fatalf("same install again: %+v %v %v", got, created, err)
	}
	c.SourceQuery = "SELECT * FROM customers"
	if _, _, err := s.InstallConnector(ctx, c); !errors.Is(err, ErrConnectorConflict) || !strings.Contains(err.Error(), "source query") {
		t.Fatalf("another query: %v, want a conflict naming the source query", err)
	}
	c.SourceQuery = ""
	if _, _, err := s.InstallConnector(ctx, c); !errors.Is(err, ErrConnectorConflict) {
		t.Fatalf("no query where one is stored: %v, want a conflict", err)
	}
	// A connector without a query reads back "".
	got, _, err = s.InstallConnector(ctx, Connector{BrandCode: "600002", IYSCode: "700001",
		Channels: []consent.Type{consent.TypeMesaj}, FirstSyncAt: time.Now()})
	if err != nil || got.SourceQuery != "" {
		t.Fatalf("install without a query: %+v %v", got, err)
	}
}
