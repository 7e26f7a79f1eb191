package store

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

// The store's SQL lives in sql/, one file per table, as named blocks:
//
//	-- name: ClaimBatch
//	-- What it does (leading comment lines document the block and are not sent).
//	WITH picked AS (...) SELECT ...;
//
// A "-- fragment: Name" block is a piece that statements include with
// {{template "Name"}}; it is never run alone. Blocks are text/template
// templates, expanded once at init with these functions:
//
//	{{columns "consents"}}          every column of the table's row type: id, connector_id, ...
//	{{columns "consents" "c"}}      the same from table alias c: c.id, c.connector_id, ...
//	{{columnsAs "consents" "c"}}    the same named for a nested struct field `db:"c"`: c.id AS "c.id", ...
//	{{early 4 5}}                   the condition of a record waiting for its date (see early)
//
// Go takes each statement by name into a package variable (stmt), so a name
// missing from the files, a template that does not expand, or a block no Go
// code takes stops the program at init, not at night. TestStatementsPrepare
// prepares every statement against the migrated schema, and
// TestRowTypesMatchTables holds the row types to it.

//go:embed sql/*.sql
var sqlFiles embed.FS

// statements holds every named statement, expanded, by name.
var statements = mustLoadStatements(sqlFiles)

// taken records the statements stmt handed out.
var taken = map[string]bool{}

// stmt returns the named statement of sql/. Call it only to initialise a
// package variable: a missing name then stops the program at init.
func stmt(name string) string {
	q, ok := statements[name]
	if !ok {
		panic(fmt.Sprintf("store: no statement named %q in sql/*.sql", name))
	}
	taken[name] = true
	return q
}

func init() {
	if idle := untaken(statements, taken); len(idle) > 0 {
		panic("store: statements of sql/*.sql that no code takes: " + strings.Join(idle, ", "))
	}
}

// untaken lists the statements no code took, by name: SQL left behind by a
// change would otherwise go unchecked and unnoticed.
func untaken(all map[string]string, taken map[string]bool) []string {
	var idle []string
	for name := range all {
		if !taken[name] {
			idle = append(idle, name)
		}
	}
	sort.Strings(idle)
	return idle
}

func mustLoadStatements(fsys fs.FS) map[string]string {
	m, err := loadStatements(fsys)
	if err != nil {
		panic("store: " + err.Error())
	}
	return m
}

// blockStart is the line that opens a block.
var blockStart = regexp.MustCompile(`^-- (name|fragment): ([A-Za-z][A-Za-z0-9]*)\s*$`)

// sqlFuncs are the functions blocks may call.
var sqlFuncs = template.FuncMap{
	"columns":   columns,
	"columnsAs": columnsAs,
	"early":     early,
}

// loadStatements reads every *.sql file of fsys's sql/ into named blocks
// and expands the statements (not the fragments).
func loadStatements(fsys fs.FS) (map[string]string, error) {
	files, err := fs.Glob(fsys, "sql/*.sql")
	if err != nil {
		return nil, err
	}
	set := template.New("").Funcs(sqlFuncs).Option("missingkey=error")
	var names []string
	where := map[string]string{}
	for _, file := range files {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		blocks, err := splitBlocks(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, bl := range blocks {
			if other, dup := where[bl.name]; dup {
				return nil, fmt.Errorf("%s: %s is also defined in %s", file, bl.name, other)
			}
			where[bl.name] = file
			if _, err := set.New(bl.name).Parse(bl.body); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if !bl.fragment {
				names = append(names, bl.name)
			}
		}
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		var sb strings.Builder
		if err := set.ExecuteTemplate(&sb, name, nil); err != nil {
			return nil, fmt.Errorf("%s: %w", where[name], err)
		}
		out[name] = sb.String()
	}
	return out, nil
}

// block is one named block of a file.
type block struct {
	name     string
	fragment bool
	body     string // without its leading comment lines or a statement's final ";"
}

// splitBlocks cuts a file into its blocks. Before the first, only comments
// and blank lines may stand (the file's own comment).
func splitBlocks(text string) ([]block, error) {
	var (
		out  []block
		cur  *block
		body []string
		line int
	)
	end := func() error {
		if cur == nil {
			return nil
		}
		// The leading comment lines document the block; lib/pq must see a
		// COPY first to run it as one.
		for len(body) > 0 && (strings.TrimSpace(body[0]) == "" || strings.HasPrefix(strings.TrimSpace(body[0]), "--")) {
			body = body[1:]
		}
		s := strings.TrimSpace(strings.Join(body, "\n"))
		if !cur.fragment {
			s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
		}
		if s == "" {
			return fmt.Errorf("%s has no SQL", cur.name)
		}
		cur.body = s
		out = append(out, *cur)
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line++
		l := sc.Text()
		if m := blockStart.FindStringSubmatch(l); m != nil {
			if err := end(); err != nil {
				return nil, err
			}
			cur, body = &block{name: m[2], fragment: m[1] == "fragment"}, nil
			continue
		}
		if strings.HasPrefix(l, "-- name:") || strings.HasPrefix(l, "-- fragment:") {
			return nil, fmt.Errorf("line %d: want -- name: Name or -- fragment: Name (letters and digits)", line)
		}
		if cur == nil {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				return nil, fmt.Errorf("line %d: SQL before the first -- name: line", line)
			}
			continue
		}
		body = append(body, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	return out, nil
}
