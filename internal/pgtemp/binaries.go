package pgtemp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// installRoot is where Debian and Ubuntu put each major version's binaries.
const installRoot = "/usr/lib/postgresql"

// binaries are the two programs a cluster needs, from one installation.
type binaries struct {
	initdb, postgres string
}

// findBinaries looks in dir when given, else next to the initdb found in
// PATH, else in the highest version under /usr/lib/postgresql.
func findBinaries(dir string) (binaries, error) {
	if dir != "" {
		return binariesIn(dir)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve symlinks (/usr/local/bin/initdb -> .../15/bin/initdb) so that
		// initdb and postgres come from the same installation.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if b, err := binariesIn(filepath.Dir(p)); err == nil {
			return b, nil
		}
	}
	for _, d := range versionDirs(installRoot) {
		if b, err := binariesIn(d); err == nil {
			return b, nil
		}
	}
	return binaries{}, fmt.Errorf("no PostgreSQL server binaries (initdb, postgres) in PATH or %s/*/bin: install the PostgreSQL server package", installRoot)
}

func binariesIn(dir string) (binaries, error) {
	b := binaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
	for _, p := range []string{b.initdb, b.postgres} {
		fi, err := os.Stat(p)
		if err != nil {
			return binaries{}, fmt.Errorf("PostgreSQL binary %s: %w", p, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return binaries{}, fmt.Errorf("PostgreSQL binary %s is not executable", p)
		}
	}
	return b, nil
}

// versionDirs lists root/<version>/bin, highest version first ("16" before
// "9.6": versions compare as numbers, part by part).
func versionDirs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type dir struct {
		path string
		ver  []int
	}
	var dirs []dir
	for _, e := range entries {
		ver, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		dirs = append(dirs, dir{filepath.Join(root, e.Name(), "bin"), ver})
	}
	sort.Slice(dirs, func(i, j int) bool { return versionLess(dirs[j].ver, dirs[i].ver) })
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = d.path
	}
	return out
}

func parseVersion(s string) ([]int, bool) {
	var ver []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		ver = append(ver, n)
	}
	return ver, true
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}
