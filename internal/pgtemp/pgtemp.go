// Package pgtemp starts and stops a throwaway PostgreSQL cluster from the
// machine's own PostgreSQL binaries: for tests, benchmarks and `iys-sync demo`.
// The cluster is fast and fragile on purpose (fsync off): never keep data in it.
package pgtemp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Options tune a cluster. The zero value is fine.
type Options struct {
	// BinDir holds initdb and postgres. Empty: PATH, then the highest version
	// in /usr/lib/postgresql/*/bin.
	BinDir string
	// Dir is where the cluster's temporary directory is made. Empty:
	// os.TempDir(), or /tmp when we run as root and the postgres user cannot
	// reach os.TempDir().
	Dir string
	// Settings are extra or overriding server settings (postgres -c name=value).
	Settings map[string]string
	// StartTimeout bounds initdb plus start. Zero: 60s.
	StartTimeout time.Duration
}

// defaultSettings trade durability for speed: the cluster is thrown away.
var defaultSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"max_connections":    "200",
	"log_min_messages":   "warning",
	"log_line_prefix":    "%m [%p] ",
	"timezone":           "UTC",
	"max_wal_size":       "2GB",
	"checkpoint_timeout": "30min",
}

// Cluster is a running throwaway cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	dir     string // removed by Stop
	dataDir string
	sockDir string
	logPath string
	bin     binaries
	owner   owner
	port    int
	args    []string

	mu     sync.Mutex
	server *server // nil when stopped
	gone   bool    // Stop was called
}

// Start makes a fresh cluster in a new temporary directory and waits until it
// accepts connections. On error nothing is left running or on disk.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	bin, err := findBinaries(opts.BinDir)
	if err != nil {
		return nil, fmt.Errorf("pgtemp: %w", err)
	}
	own, err := currentOwner()
	if err != nil {
		return nil, fmt.Errorf("pgtemp: %w", err)
	}
	dir, err := os.MkdirTemp(own.parentDir(opts.Dir), "pgtemp-")
	if err != nil {
		return nil, fmt.Errorf("pgtemp: make temporary directory: %w", err)
	}
	c := &Cluster{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logPath: filepath.Join(dir, "postgres.log"),
		bin:     bin,
		owner:   own,
	}
	defer func() {
		if err != nil {
			c.Stop() //nolint:errcheck // the first error is the one to report
		}
	}()
	if err := c.prepare(ctx); err != nil {
		return nil, fmt.Errorf("pgtemp: %w", err)
	}
	c.args = serverArgs(c.sockDir, opts.Settings)
	if err := c.startFreshPort(ctx); err != nil {
		return nil, fmt.Errorf("pgtemp: %w", err)
	}
	return c, nil
}

// prepare makes the directories and runs initdb.
func (c *Cluster) prepare(ctx context.Context) error {
	if err := c.owner.checkReachable(c.dir); err != nil {
		return err
	}
	if err := os.Mkdir(c.sockDir, 0o700); err != nil {
		return fmt.Errorf("make socket directory: %w", err)
	}
	if err := c.owner.give(c.dir, c.sockDir); err != nil {
		return err
	}
	return runTool(ctx, c.owner, c.bin.initdb,
		"-D", c.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
}

// startFreshPort starts the server on a free port, trying another one when a
// concurrent process took the port between our probe and the server's bind.
func (c *Cluster) startFreshPort(ctx context.Context) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		c.port, err = freePort()
		if err != nil {
			return err
		}
		err = c.startServer(ctx)
		if err == nil || !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

func serverArgs(sockDir string, extra map[string]string) []string {
	settings := make(map[string]string, len(defaultSettings)+len(extra))
	for k, v := range defaultSettings {
		settings[k] = v
	}
	for k, v := range extra {
		settings[k] = v
	}
	settings["listen_addresses"] = "127.0.0.1"
	settings["unix_socket_directories"] = sockDir
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	args := make([]string, 0, 2*len(names))
	for _, k := range names {
		args = append(args, "-c", k+"="+settings[k])
	}
	return args
}

func (c *Cluster) startServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return errors.New("cluster was stopped")
	}
	if c.server != nil {
		return nil
	}
	args := append([]string{"-D", c.dataDir, "-p", strconv.Itoa(c.port)}, c.args...)
	s, err := startServer(ctx, c.owner, c.bin.postgres, c.logPath, args, c.URL("postgres"))
	if err != nil {
		return err
	}
	c.server = s
	return nil
}

// URL is a connection URL for database dbname, as the superuser postgres.
func (c *Cluster) URL(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     "127.0.0.1:" + strconv.Itoa(c.port),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the cluster listens on, on 127.0.0.1. It stays the
// same across Restart.
func (c *Cluster) Port() int { return c.port }

// Restart stops the server (fast shutdown: open connections are cut) and
// starts it again on the same data directory and port.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	s := c.server
	c.server = nil
	gone := c.gone
	c.mu.Unlock()
	if gone {
		return errors.New("pgtemp: restart: cluster was stopped")
	}
	if s != nil {
		// An escalated shutdown is still a shutdown: start again once the
		// process is gone.
		if err := s.stop(); err != nil && !s.gone() {
			return fmt.Errorf("pgtemp: restart: %w", err)
		}
	}
	if err := c.startServer(ctx); err != nil {
		return fmt.Errorf("pgtemp: restart: %w", err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown) and removes its directory.
// Calling it again does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	s := c.server
	c.server = nil
	already := c.gone
	c.gone = true
	c.mu.Unlock()
	if already {
		return nil
	}
	var errs []error
	if s != nil {
		errs = append(errs, s.stop())
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", c.dir, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pgtemp: stop: %w", err)
	}
	return nil
}
