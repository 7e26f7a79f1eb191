package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestInstallConnectorIdempotent(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	want := Connector{BrandCode: "B1", IYSCode: "700001",
		Channels:    []consent.Type{consent.TypeEposta, consent.TypeMesaj},
		FirstSyncAt: time.Date(2025, 5, 16, 1, 0, 0, 0, consent.Istanbul)}
	first, created, err := s.InstallConnector(ctx, want)
	if err != nil || !created {
		t.Fatalf("first install: created=%v err=%v", created, err)
	}
	if got := consent.JoinTypes(first.Channels, ","); got != "MESAJ,EPOSTA" {
		t.Errorf("channels = %s, want MESAJ,EPOSTA (İYS's order)", got)
	}
	if first.RecipientType != consent.Bireysel || first.DefaultSource != consent.SourceWeb || first.State != ConnectorActive {
		t.Errorf("defaults not applied: %+v", first)
	}
	if first.VerifiedAt != nil {
		t.Errorf("VerifiedAt = %v, want nil", first.VerifiedAt)
	}

	// Again, a day later, channels in another order: nothing changes.
	again := want
	again.Channels = []consent.Type{consent.TypeMesaj, consent.TypeEposta}
	again.FirstSyncAt = want.FirstSyncAt.Add(24 * time.Hour)
	second, created, err := s.InstallConnector(ctx, again)
	if err != nil || created {
		t.Fatalf("second install: created=%v err=%v", created, err)
	}
	if second.ID != first.ID || !second.InstalledAt.Equal(first.InstalledAt) || !second.FirstSyncAt.Equal(first.FirstSyncAt) {
		t.Errorf("second install changed the connector:\n got %+v\nwant %+v", second, first)
	}
	all, err := s.Connectors(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Connectors = %d, %v; want 1", len(all), err)
	}
	got, err := s.Connector(ctx, "B1")
	if err != nil || got.ID != first.ID || got.IYSCode != "700001" {
		t.Fatalf("Connector(B1) = %+v, %v", got, err)
	}
}

func TestInstallConnectorConflict(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	base := install(t, s, "B1")
	for name, change := range map[string]func(*Connector){
		"İYS code is IYS-B1, not 999": func(c *Connector) { c.IYSCode = "999" },
		"channels are":                func(c *Connector) { c.Channels = []consent.Type{consent.TypeEposta} },
		"recipient type is BIREYSEL":  func(c *Connector) { c.RecipientType = consent.Tacir },
		"default source is HS_WEB":    func(c *Connector) { c.DefaultSource = consent.SourceMobil },
	} {
		c := base
		change(&c)
		_, created, err := s.InstallConnector(ctx, c)
		if !errors.Is(err, ErrConnectorConflict) || created {
			t.Errorf("%s: created=%v err=%v; want ErrConnectorConflict", name, created, err)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("conflict error %q does not say %q", err, name)
		}
	}
	got, err := s.Connector(ctx, "B1")
	if err != nil || got.IYSCode != base.IYSCode || len(got.Channels) != 3 {
		t.Fatalf("a refused install changed the connector: %+v, %v", got, err)
	}
}

func TestInstallConnectorConcurrent(t *testing.T) {
	s, _ := newStore(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, ids := 0, map[int64]bool{}
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, ok, err := s.InstallConnector(context.Background(), Connector{BrandCode: "B", IYSCode: "1",
				Channels: []consent.Type{consent.TypeMesaj}, FirstSyncAt: time.Now()})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created++
			}
			ids[c.ID] = true
		}()
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Fatalf("created %d times, %d ids; want once, one id", created, len(ids))
	}
}

func TestInstallConnectorRefusesBadValues(t *testing.T) {
	s, _ := newStore(t)
	ok := Connector{BrandCode: "B", IYSCode: "1", Channels: []consent.Type{consent.TypeMesaj}, FirstSyncAt: time.Now()}
	for name, change := range map[string]func(*Connector){
		"no brand":      func(c *Connector) { c.BrandCode = "" },
		"no channels":   func(c *Connector) { c.Channels = nil },
		"bad channel":   func(c *Connector) { c.Channels = []consent.Type{"SMS"} },
		"bad type":      func(c *Connector) { c.RecipientType = "PERSON" },
		"citizen src":   func(c *Connector) { c.DefaultSource = consent.SourceIYSWeb },
		"no first sync": func(c *Connector) { c.FirstSyncAt = time.Time{} },
	} {
		c := ok
		change(&c)
		if _, _, err := s.InstallConnector(context.Background(), c); err == nil {
			t.Errorf("%s: install succeeded", name)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM connectors"); n != 0 {
		t.Fatalf("%d connectors stored", n)
	}
}

func TestConnectorMissing(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.Connector(context.Background(), "NOPE"); !errors.Is(err, ErrNoConnector) {
		t.Fatalf("err = %v, want ErrNoConnector", err)
	}
	if _, err := s.ImportFile(context.Background(), 42, fixed(metaFor()), fromSlice(), nil); !errors.Is(err, ErrNoConnector) {
		t.Fatalf("import into a missing connector: err = %v, want ErrNoConnector", err)
	}
}

// TestConnectorWithRecordsStays: consents has no foreign key (see
// 0001_init.sql), so a trigger keeps a connector with records from going.
func TestConnectorWithRecordsStays(t *testing.T) {
	s, _ := newStore(t)
	used := install(t, s, "USED")
	unused := install(t, s, "UNUSED")
	importRows(t, s, used.ID, sms(t, 1, "+905331234562", consent.StatusOnay, "15.05.2025 14:00:00"))
	if _, err := s.db.Exec("DELETE FROM connectors WHERE id = $1", used.ID); err == nil {
		t.Fatal("deleted a connector that has records")
	}
	if _, err := s.db.Exec("UPDATE connectors SET id = 999 WHERE id = $1", used.ID); err == nil {
		t.Fatal("renumbered a connector that has records")
	}
	if _, err := s.db.Exec("UPDATE connectors SET state = 'paused' WHERE id = $1", used.ID); err != nil {
		t.Fatalf("other updates must pass: %v", err)
	}
	if _, err := s.db.Exec("DELETE FROM imports WHERE connector_id = $1", unused.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec("DELETE FROM connectors WHERE id = $1", unused.ID); err != nil {
		t.Fatalf("could not delete a connector without records: %v", err)
	}
}
