package store

import (
	"context"
	"database/sql"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestRowTypesMatchTables holds each table's row type to the migrated
// schema: every column has a field and every field a column, a nullable
// column's field can hold NULL, and each field's Go type can hold its
// column's values. A table without a row type fails too.
func TestRowTypesMatchTables(t *testing.T) {
	s, _ := newStore(t)
	var cols []struct {
		Table    string `db:"table_name"`
		Column   string `db:"column_name"`
		DataType string `db:"data_type"`
		Nullable string `db:"is_nullable"`
	}
	if err := s.db.Select(&cols, `
		SELECT c.table_name, c.column_name, c.data_type, c.is_nullable
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> 'schema_migrations'
		ORDER BY c.table_name, c.ordinal_position`); err != nil {
		t.Fatal(err)
	}
	type column struct{ dataType, nullable string }
	schema := map[string]map[string]column{}
	for _, c := range cols {
		if schema[c.Table] == nil {
			schema[c.Table] = map[string]column{}
		}
		schema[c.Table][c.Column] = column{c.DataType, c.Nullable}
	}
	for table := range schema {
		if _, ok := rowTypes[table]; !ok {
			t.Errorf("table %s has no row type in rowTypes", table)
		}
	}
	for table, rt := range rowTypes {
		have, ok := schema[table]
		if !ok {
			t.Errorf("row type %s names table %s, which the migrations do not make", rt, table)
			continue
		}
		fields := map[string]reflect.Type{}
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("db"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no db tag: every field of a row type is a column", rt, f.Name)
				continue
			}
			fields[name] = f.Type
		}
		for _, col := range sortedKeys(have) {
			ft, ok := fields[col]
			if !ok {
				t.Errorf("%s.%s has no field in %s", table, col, rt)
				continue
			}
			c := have[col]
			if c.nullable == "YES" && !holdsNull(ft) {
				t.Errorf("%s.%s may be NULL, but %s's field is a %s: want a sql.Null type or a pointer", table, col, rt, ft)
			}
			if err := holdsType(c.dataType, ft); err != "" {
				t.Errorf("%s.%s (%s): %s's field: %s", table, col, c.dataType, rt, err)
			}
		}
		for _, f := range sortedKeys(fields) {
			if _, ok := have[f]; !ok {
				t.Errorf("%s has a field for %s.%s, which the table lacks", rt, table, f)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// holdsNull tells whether a field of type t scans a NULL.
func holdsNull(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || nullWrapper(t)
}

// nullWrapper tells a database/sql Null type (sql.NullString, sql.Null[T]...).
func nullWrapper(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == "database/sql" && strings.HasPrefix(t.Name(), "Null")
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	scannerType = reflect.TypeFor[sql.Scanner]()
)

// holdsType says why a field of type t cannot hold values of PostgreSQL's
// dataType ("" if it can). A type this does not know fails: add its rule.
func holdsType(dataType string, t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if nullWrapper(t) {
		t = t.Field(0).Type // the value it holds: String, Int64, Time, V...
	}
	ok := false
	switch dataType {
	case "bigint", "integer", "smallint":
		ok = slices.Contains([]reflect.Kind{reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64}, t.Kind())
	case "text":
		ok = t.Kind() == reflect.String
	case "boolean":
		ok = t.Kind() == reflect.Bool
	case "timestamp with time zone", "date":
		ok = t == timeType || reflect.PointerTo(t).Implements(scannerType)
	case "ARRAY":
		ok = t.Kind() == reflect.Slice
	case "bytea":
		ok = t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
	default:
		return "the test knows no Go type for this data type: add its rule to holdsType"
	}
	if !ok {
		return t.String() + " cannot hold it"
	}
	return ""
}

// TestStatementsPrepare prepares every named statement of sql/ against the
// migrated schema (with the import's temporary tables made), so that a
// column renamed or dropped, or a typo, fails here and not at night. A
// COPY is opened and closed empty; DDL is parsed here and run by the
// import's tests.
func TestStatementsPrepare(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // only reads were made
	for _, q := range []string{createStaging, createSpool} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	names := sortedKeys(statements)
	if len(names) < 50 {
		t.Fatalf("only %d statements loaded", len(names))
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT statement"); err != nil {
			t.Fatal(err)
		}
		p, err := tx.PrepareContext(ctx, statements[name])
		if err == nil && strings.HasPrefix(statements[name], "COPY ") {
			_, err = p.ExecContext(ctx) // ends the COPY
		}
		if p != nil {
			p.Close()
		}
		if err != nil {
			t.Errorf("statement %s does not prepare: %v", name, err)
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT statement"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT statement"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadStatements(t *testing.T) {
	fsys := fstest.MapFS{
		"sql/a.sql": {Data: []byte(`-- a.sql: the file's own comment.

-- fragment: Pending
-- a fragment's comment
state = 'pending'

-- name: CountPending
-- What it does: not sent.
SELECT count(*) FROM consents
WHERE {{template "Pending"}} AND {{early 2 3}};

-- name: Runs
SELECT {{columns "runs" "r"}} FROM runs r;
`)},
		"sql/b.sql": {Data: []byte(`-- name: Copy
-- a COPY must come first for lib/pq
COPY import_rows FROM STDIN;
`)},
	}
	got, err := loadStatements(fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CountPending": "SELECT count(*) FROM consents\nWHERE state = 'pending' AND " + early(2, 3),
		"Runs":         "SELECT r." + strings.Join(tagColumns(reflect.TypeFor[Run]()), ", r.") + " FROM runs r",
		"Copy":         "COPY import_rows FROM STDIN",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if !strings.HasPrefix(got["Runs"], "SELECT r.id, r.connector_id, r.trigger,") {
		t.Errorf("Runs: %q", got["Runs"])
	}
}

func TestLoadStatementsRefusesMistakes(t *testing.T) {
	for name, text := range map[string]string{
		"SQL before the first block":     "SELECT 1;\n-- name: A\nSELECT 2;",
		"two blocks of one name":         "-- name: A\nSELECT 1;\n-- name: A\nSELECT 2;",
		"a block without SQL":            "-- name: A\n-- only a comment\n-- name: B\nSELECT 1;",
		"a bad name line":                "-- name: Not-a-name\nSELECT 1;",
		"an unknown function":            "-- name: A\nSELECT {{colums \"runs\"}} FROM runs;",
		"an unknown table":               "-- name: A\nSELECT {{columns \"runz\"}} FROM runz;",
		"a missing fragment":             "-- name: A\nSELECT 1 WHERE {{template \"Nope\"}};",
		"a template that does not parse": "-- name: A\nSELECT {{columns \"runs\"};",
	} {
		if got, err := loadStatements(fstest.MapFS{"sql/x.sql": {Data: []byte(text)}}); err == nil {
			t.Errorf("%s: loaded %q", name, got)
		}
	}
}

func TestStmtPanicsOnAMissingName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("stmt of a name sql/ lacks did not panic")
		}
	}()
	stmt("NoSuchStatement")
}

func TestEveryStatementIsTaken(t *testing.T) {
	if idle := untaken(statements, taken); len(idle) > 0 {
		t.Errorf("untaken: %v", idle)
	}
	if idle := untaken(map[string]string{"A": "SELECT 1", "B": "SELECT 2"}, map[string]bool{"A": true}); !slices.Equal(idle, []string{"B"}) {
		t.Errorf("untaken = %v, want [B]", idle)
	}
}

// TestColumnsFollowRowTypes: the statements that read whole records take
// their column list from Record's tags, so that a field added there is read
// by every one of them.
func TestColumnsFollowRowTypes(t *testing.T) {
	bare, _ := columns("consents")
	aliased, _ := columns("consents", "c")
	for _, name := range []string{"ConsentsOf", "RecordsOfKeys", "SyncedBetween", "SupersededRecords", "ClaimBatch"} {
		if q := statements[name]; !strings.Contains(q, bare) && !strings.Contains(q, aliased) {
			t.Errorf("%s does not read every column of Record", name)
		}
	}
	as, err := columnsAs("consents", "c")
	if err != nil || !strings.HasPrefix(as, `c.id AS "c.id", c.connector_id AS "c.connector_id"`) {
		t.Errorf("columnsAs = %q, %v", as, err)
	}
	if _, err := columns("consents", "a", "b"); err == nil {
		t.Error("columns took two aliases")
	}
}
