package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDBFreshAndDropped(t *testing.T) {
	var first string
	var leak *sql.DB
	t.Cleanup(func() {
		if leak != nil {
			leak.Close()
		}
	})
	t.Run("first", func(t *testing.T) {
		first = NewDB(t)
		var err error
		if leak, err = sql.Open("postgres", first); err != nil {
			t.Fatal(err)
		}
		// Still connected when the subtest ends: the cleanup must drop the
		// database anyway.
		if _, err := leak.Exec("CREATE TABLE leftover (n int)"); err != nil {
			t.Fatal(err)
		}
	})
	second := NewDB(t)
	if second == first {
		t.Fatal("two tests got the same database")
	}
	db := open(t, second)
	var n int
	if err := db.QueryRow("SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("fresh database holds another test's table (n=%d, err=%v)", n, err)
	}
	name := first[strings.LastIndex(first, "/")+1 : strings.Index(first, "?")]
	if err := db.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s not dropped after its test (n=%d, err=%v)", name, n, err)
	}
}

func TestDBNameShapes(t *testing.T) {
	a, b := dbName("TestX/sub case-1"), dbName("TestX/sub case-1")
	if a == b {
		t.Fatal("names are not unique")
	}
	long := dbName(strings.Repeat("TestVeryLong", 20))
	if len(long) > 63 {
		t.Fatalf("name %q longer than 63 bytes", long)
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			t.Fatalf("name %q has %q", a, r)
		}
	}
}

func TestClusterOwn(t *testing.T) {
	c := Cluster(t)
	db := open(t, c.URL("postgres"))
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// setups counts the runs of tmpl's setup.
var setups atomic.Int32

var tmpl = NewTemplate("counter", func(ctx context.Context, url string) error {
	setups.Add(1)
	db, err := sql.Open("postgres", url)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE TABLE counter (n int); INSERT INTO counter VALUES (1)")
	return err
})

// Copies of a template hold what its setup made, once for all, and are
// each a test's own; the template takes no connection.
func TestTemplateCopies(t *testing.T) {
	urls := make([]string, 4)
	t.Run("copies", func(t *testing.T) {
		for i := range urls {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				urls[i] = tmpl.NewDB(t)
				db := open(t, urls[i])
				if _, err := db.Exec("UPDATE counter SET n = n + $1", i); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := db.QueryRow("SELECT n FROM counter").Scan(&n); err != nil || n != 1+i {
					t.Fatalf("n = %d (%v), want %d: a copy saw another's change", n, err, 1+i)
				}
			})
		}
	})
	if n := setups.Load(); n != 1 {
		t.Fatalf("setup ran %d times, want once", n)
	}
	if len(map[string]bool{urls[0]: true, urls[1]: true, urls[2]: true, urls[3]: true}) != 4 {
		t.Fatalf("copies share a database: %v", urls)
	}
	db := open(t, tmpl.url(t))
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "not currently accepting connections") {
		t.Fatalf("connecting to the template: %v, want a refusal", err)
	}
}

func TestTemplateSetupFails(t *testing.T) {
	bad := NewTemplate("bad", func(context.Context, string) error { return errors.New("boom") })
	if _, err := bad.make(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("make = %v, want the setup's error", err)
	}
}

// url is the template database's URL.
func (tp *Template) url(t *testing.T) string {
	u, err := withDatabase(shared.base, tp.name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
