package pgtest

import (
	"database/sql"
	"strings"
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
