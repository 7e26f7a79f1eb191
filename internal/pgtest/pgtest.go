// Package pgtest gives tests a real, fresh PostgreSQL database: from the
// server in IYS_TEST_DATABASE_URL when set, else from one throwaway cluster
// per test binary. A test that cannot get one fails; it never skips.
//
// A package using it calls Main from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// NewDB gives an empty database; a Template gives copies of a database that
// was brought up (migrated) once per test binary.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/pgtemp"
)

// EnvURL names the variable that points tests at an existing server. Its
// user must be allowed to CREATE DATABASE.
const EnvURL = "IYS_TEST_DATABASE_URL"

var (
	mainCalled atomic.Bool

	shared struct {
		once    sync.Once
		cluster *pgtemp.Cluster
		base    string // URL of a database on the server to connect to for admin work
		err     error

		mu        sync.Mutex
		templates []string // databases of the Templates made, dropped by Main
	}
)

// Main runs the tests and then stops the shared cluster, if one was started.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if shared.cluster == nil && shared.base != "" {
		// A server of the caller's: leave no template behind.
		shared.mu.Lock()
		for _, name := range shared.templates {
			if err := dropDB(shared.base, name); err != nil {
				fmt.Fprintln(os.Stderr, "pgtest:", err)
			}
		}
		shared.mu.Unlock()
	}
	if c := shared.cluster; c != nil {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// server returns the admin URL of the shared server, starting the cluster on
// first use.
func server() (string, error) {
	shared.once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			shared.base = u
			return
		}
		if !mainCalled.Load() {
			shared.err = fmt.Errorf("%s is not set, and this package's TestMain does not call pgtest.Main(m), which stops the throwaway cluster: add func TestMain(m *testing.M) { pgtest.Main(m) }", EnvURL)
			return
		}
		c, err := pgtemp.Start(context.Background(), pgtemp.Options{})
		if err != nil {
			shared.err = fmt.Errorf("%s is not set, and starting a throwaway PostgreSQL failed: %w\n(fix that, or point the tests at a server: %s=postgres://user@host:5432/postgres?sslmode=disable)", EnvURL, err, EnvURL)
			return
		}
		shared.cluster, shared.base = c, c.URL("postgres")
	})
	return shared.base, shared.err
}

// NewDB creates an empty database for this test and returns its URL. The
// database is dropped when the test ends, connections left open or not.
func NewDB(t testing.TB) string {
	t.Helper()
	return newDB(t, "template0")
}

// newDB creates a database for this test as a copy of the template
// database.
func newDB(t testing.TB, template string) string {
	t.Helper()
	base, err := server()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := dbName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := admin(ctx, base, "CREATE DATABASE "+pq.QuoteIdentifier(name)+" TEMPLATE "+pq.QuoteIdentifier(template)); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := dropDB(base, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	u, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// Template is a database that its setup (a schema's migrations) brings up
// once per test binary, on the first NewDB; each NewDB is then a copy of it,
// made by PostgreSQL (CREATE DATABASE ... TEMPLATE), which is much faster
// than running the setup again. Declare one per setup as a package variable.
type Template struct {
	stem  string
	setup func(ctx context.Context, url string) error

	once sync.Once
	name string // the template database, once made
	err  error
}

// NewTemplate is a Template brought up by setup, which is given the URL of
// an empty database and must close every connection it opened before it
// returns: PostgreSQL copies no database that a session is connected to.
// stem (lower-case letters and digits) shows in the database's name.
func NewTemplate(stem string, setup func(ctx context.Context, url string) error) *Template {
	return &Template{stem: stem, setup: setup}
}

// NewDB creates a copy of the template for this test and returns its URL.
// The database is dropped when the test ends, connections left open or not.
func (tp *Template) NewDB(t testing.TB) string {
	t.Helper()
	tp.once.Do(func() { tp.name, tp.err = tp.make() })
	if tp.err != nil {
		t.Fatalf("pgtest: template %s: %v", tp.stem, tp.err)
	}
	return newDB(t, tp.name)
}

func (tp *Template) make() (string, error) {
	base, err := server()
	if err != nil {
		return "", err
	}
	name := dbName("tmpl_" + tp.stem)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := admin(ctx, base, "CREATE DATABASE "+pq.QuoteIdentifier(name)+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	shared.mu.Lock()
	shared.templates = append(shared.templates, name)
	shared.mu.Unlock()
	u, err := withDatabase(base, name)
	if err != nil {
		return "", err
	}
	if err := tp.setup(ctx, u); err != nil {
		return "", fmt.Errorf("set up %s: %w", name, err)
	}
	// No session may connect from now on, a test's by mistake or autovacuum:
	// a connected session would make every copy fail.
	if err := admin(ctx, base, "ALTER DATABASE "+pq.QuoteIdentifier(name)+" ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("close %s to connections: %w", name, err)
	}
	return name, nil
}

func dropDB(base, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// FORCE: a test that failed half-way may leave connections open.
	if err := admin(ctx, base, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// Cluster starts a cluster of the test's own, stopped when the test ends: for
// tests that restart or break the server. It ignores IYS_TEST_DATABASE_URL,
// since a shared server must not be restarted.
func Cluster(t testing.TB) *pgtemp.Cluster {
	t.Helper()
	c, err := pgtemp.Start(context.Background(), pgtemp.Options{})
	if err != nil {
		t.Fatalf("pgtest: start a cluster of the test's own: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

func admin(ctx context.Context, base, stmt string) error {
	db, err := sql.Open("postgres", base)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// dbName makes a unique, readable database name from the test's name:
// lower-case letters, digits and _, within PostgreSQL's 63 bytes.
func dbName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	stem := b.String()
	if len(stem) > 40 {
		stem = stem[:40]
	}
	var rnd [6]byte
	rand.Read(rnd[:]) //nolint:errcheck // crypto/rand.Read never fails
	return "t_" + stem + "_" + hex.EncodeToString(rnd[:])
}

// withDatabase points a URL at another database, keeping user, host and options.
func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL", EnvURL) // never echo it: it may hold a password
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}
