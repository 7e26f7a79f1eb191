package pgtemp

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartConnectRestartStop(t *testing.T) {
	ctx := context.Background()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })

	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, "CREATE TABLE kept (n int)")
	mustExec(t, db, "INSERT INTO kept VALUES (42)")
	var fsync string
	if err := db.QueryRow("SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q, %v; want off", fsync, err)
	}
	pid := c.server.cmd.Process.Pid
	port := c.Port()

	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Fatalf("port changed across restart: %d -> %d", port, c.Port())
	}
	if c.server.cmd.Process.Pid == pid {
		t.Fatal("restart kept the same server process")
	}
	// The pool's old connection was cut; database/sql retries on a new one.
	var n int
	if err := db.QueryRow("SELECT n FROM kept").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after restart: n = %d, %v; want the row kept", n, err)
	}

	pid = c.server.cmd.Process.Pid
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory %s still there after Stop: %v", c.dir, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("server pid %d still alive after Stop: %v", pid, err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := c.Restart(ctx); err == nil {
		t.Fatal("Restart after Stop succeeded")
	}
}

func TestStartFailureNamesBinaryAndCleansUp(t *testing.T) {
	parent := reachableTempDir(t)
	_, err := Start(context.Background(), Options{Dir: parent, Settings: map[string]string{"shared_buffers": "lots"}})
	if err == nil {
		t.Fatal("Start with a bad setting succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "/postgres") || !strings.Contains(msg, "shared_buffers") {
		t.Fatalf("error should name the postgres binary and quote its log; got:\n%s", msg)
	}
	left, _ := os.ReadDir(parent)
	if len(left) != 0 {
		t.Fatalf("Start left %d entries in %s after failing", len(left), parent)
	}
}

func TestStartBadBinDir(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "initdb") {
		t.Fatalf("want an error naming initdb, got %v", err)
	}
}

func TestStartContextCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	if c, err := Start(ctx, Options{}); err == nil {
		c.Stop()
		t.Fatal("Start with an expired context succeeded")
	}
}

func TestVersionDirsHighestFirst(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "16", "10", "notes"} {
		if err := os.MkdirAll(filepath.Join(root, v, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := versionDirs(root)
	var names []string
	for _, d := range got {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	if want := []string{"16", "15", "10", "9.6"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("versionDirs = %v, want %v", names, want)
	}
}

func TestServerArgsOverride(t *testing.T) {
	args := strings.Join(serverArgs("/s", map[string]string{"fsync": "on", "work_mem": "8MB"}), " ")
	for _, want := range []string{"-c fsync=on", "-c work_mem=8MB", "-c unix_socket_directories=/s", "-c listen_addresses=127.0.0.1"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if strings.Contains(args, "fsync=off") {
		t.Errorf("args %q keep the overridden default", args)
	}
}

// TestUnreachableDirSaysSo: as root, a directory the postgres user cannot
// enter gets a clear message before initdb runs.
func TestUnreachableDirSaysSo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	_, err := Start(context.Background(), Options{Dir: t.TempDir()}) // 0700, under a 0700 parent
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("want a 'cannot reach' error, got %v", err)
	}
}

// TestUnreachableTMPDIRFallsBack: as root, with no Options.Dir and a TMPDIR
// the postgres user cannot enter, the cluster goes to /tmp.
func TestUnreachableTMPDIRFallsBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	t.Setenv("TMPDIR", t.TempDir())
	c, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if filepath.Dir(c.dir) != "/tmp" {
		t.Fatalf("cluster made in %s, want /tmp", c.dir)
	}
}

// reachableTempDir is a temporary directory the postgres user can enter
// (t.TempDir's parent is 0700).
func reachableTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "pgtemp-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
