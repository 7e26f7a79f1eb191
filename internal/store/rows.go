package store

import (
	"fmt"
	"reflect"
	"strings"
)

// rowTypes are the row type of each table: one struct whose db tags name
// every column, and whose tags are the column list of every statement that
// reads a whole row ({{columns "table"}} in sql/). TestRowTypesMatchTables
// holds each to its table in the migrated schema, both ways.
var rowTypes = map[string]reflect.Type{
	"connectors":         reflect.TypeFor[connectorRow](),
	"consents":           reflect.TypeFor[Record](),
	"changes":            reflect.TypeFor[changeRow](),
	"imports":            reflect.TypeFor[importRow](),
	"runs":               reflect.TypeFor[Run](),
	"batches":            reflect.TypeFor[batchRow](),
	"batch_items":        reflect.TypeFor[batchItemRow](),
	"pull_cursors":       reflect.TypeFor[pullCursorRow](),
	"pull_quarantine":    reflect.TypeFor[quarantineRow](),
	"source_users":       reflect.TypeFor[sourceUserRow](),
	"iys_tokens":         reflect.TypeFor[tokenRow](),
	"iys_pace":           reflect.TypeFor[paceRow](),
	"reconciles":         reflect.TypeFor[Reconcile](),
	"redrives":           reflect.TypeFor[redriveRow](),
	"consent_events":     reflect.TypeFor[Event](),
	"consent_event_cuts": reflect.TypeFor[eventCutRow](),
	"consent_counts":     reflect.TypeFor[countRow](),
	"webhook_cursors":    reflect.TypeFor[webhookCursorRow](),
}

// tagColumns are the columns a row type names, in field order.
func tagColumns(t reflect.Type) []string {
	var cols []string
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("db"), ","); tag != "" && tag != "-" {
			cols = append(cols, tag)
		}
	}
	return cols
}

// tableColumns are the columns of a table's row type.
func tableColumns(table string) ([]string, error) {
	t, ok := rowTypes[table]
	if !ok {
		return nil, fmt.Errorf("no row type for table %q", table)
	}
	return tagColumns(t), nil
}

// columns is the column list of a table's row type, each column prefixed
// with the alias when one is given: {{columns "consents" "c"}} in sql/.
func columns(table string, alias ...string) (string, error) {
	cols, err := tableColumns(table)
	if err != nil || len(alias) == 0 {
		return strings.Join(cols, ", "), err
	}
	if len(alias) > 1 {
		return "", fmt.Errorf("columns %s: one alias at most", table)
	}
	for i, c := range cols {
		cols[i] = alias[0] + "." + c
	}
	return strings.Join(cols, ", "), nil
}

// columnsAs is the column list of a table's row type from an alias, each
// named alias.column, as sqlx fills a struct field tagged `db:"alias"` of
// that type in a join: {{columnsAs "consents" "c"}} in sql/.
func columnsAs(table, alias string) (string, error) {
	cols, err := tableColumns(table)
	if err != nil {
		return "", err
	}
	for i, c := range cols {
		cols[i] = fmt.Sprintf(`%s.%s AS "%[1]s.%[2]s"`, alias, c)
	}
	return strings.Join(cols, ", "), nil
}
