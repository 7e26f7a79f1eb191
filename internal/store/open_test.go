package store

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/iys-sync/iys-sync/internal/pgtest"
)

func TestOpenConcurrentMigrations(t *testing.T) {
	url := pgtest.NewDB(t)
	const n = 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(context.Background(), url)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	s := stores[0]
	if got := count(t, s, "SELECT count(*) FROM schema_migrations"); got != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", got, len(ms))
	}
	if got := count(t, s, "SELECT count(DISTINCT version) FROM schema_migrations"); got != len(ms) {
		t.Fatalf("schema_migrations has %d versions, want %d", got, len(ms))
	}
	if got := count(t, s, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"); got != 0 {
		t.Fatalf("%d advisory locks still held after Open", got)
	}
	// A later start applies nothing and still works.
	again, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if got := count(t, s, "SELECT count(*) FROM schema_migrations"); got != len(ms) {
		t.Fatalf("reopen changed schema_migrations to %d rows", got)
	}
}

func TestMigrationsNumbered(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Fatalf("migration %s has version %d, want %d (no gaps)", m.name, m.version, i+1)
		}
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	const pw = "s3cretPW"
	for _, dsn := range []string{
		"postgres://app:" + pw + "@127.0.0.1:notaport/iys",
		"postgres://app:" + pw + "@127.0.0.1:1/iys?sslmode=disable&connect_timeout=2",
		"postgres://app@127.0.0.1:1/iys?sslmode=disable&password=" + pw,
		"postgres://app:" + pw + "@127.0.0.1:5432/iys?sslmode=bogus",
		"postgres://app:" + pw + "@[::1/iys",
		"mysql://app:" + pw + "@127.0.0.1/iys",
		"host=127.0.0.1 port=1 user=app password=" + pw + " sslmode=disable connect_timeout=2",
		"host=127.0.0.1 user=app password='" + pw + "' sslmode=nope",
		"host=127.0.0.1 password " + pw,
	} {
		_, err := Open(context.Background(), dsn)
		if err == nil {
			t.Errorf("Open(%q) succeeded", RedactURL(dsn))
			continue
		}
		if msg := err.Error(); strings.Contains(msg, pw) || !strings.HasPrefix(msg, "open database") {
			t.Errorf("Open error leaks the password or lacks context:\n%s", msg)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:pw@db.example:5432/iys?sslmode=require": "postgres://app:***@db.example:5432/iys?sslmode=require",
		"postgresql://app@db/iys":                               "postgresql://app@db/iys",
		"postgres://app:p%40ss@db/iys":                          "postgres://app:***@db/iys",
		"postgres://db/iys?password=pw&sslmode=disable":         "postgres://db/iys?password=***&sslmode=disable",
		"host=db user=app password=pw dbname=iys":               "host=db user=app password=*** dbname=iys",
		"host=db password='p w' dbname=iys":                     "host=db password=*** dbname=iys",
		"postgres://app:pw@[::1/iys":                            "(unreadable connection string)",
		"nonsense":                                              "(unreadable connection string)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
