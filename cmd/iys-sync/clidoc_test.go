package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docFlags are one command's flags as docs/cli.md lists them: its own (the
// rows of its table) and the settings it takes ("Settings flags:"), the
// refused ones marked.
type docFlags struct {
	own, settings, refused []string
}

var (
	docHeading  = regexp.MustCompile("^### `iys-sync ([^`]+)`")
	docOwnRow   = regexp.MustCompile("^\\| `--([a-z-]+)")
	docSetting  = regexp.MustCompile("`--([a-z-]+)`( \\(refused\\))?")
	helpFlag    = regexp.MustCompile(`^  -([a-z-]+)`)
	helpRefused = regexp.MustCompile(`^\s+refused`)
)

// readCLIDoc reads docs/cli.md's per-command flag lists.
func readCLIDoc(t *testing.T) map[string]*docFlags {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*docFlags{}
	var cur *docFlags
	inSettings := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			cur, inSettings = nil, false
		}
		if m := docHeading.FindStringSubmatch(line); m != nil {
			cur = &docFlags{}
			out[m[1]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if m := docOwnRow.FindStringSubmatch(line); m != nil {
			cur.own = append(cur.own, m[1])
		}
		if strings.HasPrefix(line, "Settings flags:") {
			inSettings = true
		}
		if line == "" {
			inSettings = false
		}
		if inSettings {
			for _, m := range docSetting.FindAllStringSubmatch(line, -1) {
				cur.settings = append(cur.settings, m[1])
				if m[2] != "" {
					cur.refused = append(cur.refused, m[1])
				}
			}
		}
	}
	return out
}

// helpFlags reads a command's -h: its own flags, then those under the
// settings heading, and which of these are refused.
func helpFlags(help string) docFlags {
	var f docFlags
	settings := false
	last := ""
	for _, line := range strings.Split(help, "\n") {
		switch {
		case line == settingsHeading:
			settings = true
		case helpFlag.MatchString(line):
			last = helpFlag.FindStringSubmatch(line)[1]
			if settings {
				f.settings = append(f.settings, last)
			} else {
				f.own = append(f.own, last)
			}
		case settings && helpRefused.MatchString(line):
			f.refused = append(f.refused, last)
		}
	}
	return f
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// docs/cli.md lists every flag of every command, its own and the settings
// it takes, exactly as the command's -h shows them: a flag gained or lost
// without the document fails here.
func TestCLIDocListsEveryFlag(t *testing.T) {
	doc := readCLIDoc(t)
	names := []string{"--run-now"}
	for _, c := range commands() {
		names = append(names, c.name)
	}
	for _, name := range names {
		r := runCmd(t, nil, name, "-h")
		if r.code != 0 || !strings.HasPrefix(r.stderr, "Usage of iys-sync "+name+":\n") {
			t.Errorf("%s -h: exit %d\n%s", name, r.code, r.stderr)
			continue
		}
		got := helpFlags(r.stderr)
		want, ok := doc[name]
		if !ok {
			t.Errorf("docs/cli.md has no section ### `iys-sync %s`", name)
			continue
		}
		for _, part := range []struct {
			what      string
			got, want []string
		}{{"own flags", got.own, want.own}, {"settings flags", got.settings, want.settings}, {"refused flags", got.refused, want.refused}} {
			if g, w := sortedCopy(part.got), sortedCopy(part.want); !slices.Equal(g, w) {
				t.Errorf("%s: -h shows the %s %v; docs/cli.md lists %v", name, part.what, g, w)
			}
		}
		if strings.Contains(r.stderr, settingsHeading) != (len(got.settings) > 0) {
			t.Errorf("%s: the settings heading without settings, or settings without it:\n%s", name, r.stderr)
		}
		delete(doc, name)
	}
	for name := range doc {
		t.Errorf("docs/cli.md documents %q, which is no command", name)
	}
}
