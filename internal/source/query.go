package source

import (
	"database/sql"
	"fmt"
	"regexp"
	"strings"
)

// CheckQuery refuses a source query that is not one SELECT statement: empty,
// not starting with SELECT or WITH, holding a ";" outside its string
// literals and comments (a second statement), a parameter ($1: it takes
// none), or parentheses that do not balance (it would escape the
// subquery it is read through). The read does not rely on this alone: every
// statement on the brand's database is sent with the extended protocol,
// which runs one statement only, in a READ ONLY transaction.
func CheckQuery(q string) error {
	const want = ": give one SELECT (or WITH ... SELECT) statement, without a trailing \";\""
	if strings.TrimSpace(q) == "" {
		return fmt.Errorf("the source query is empty" + want)
	}
	depth, first := 0, ""
	var parenErr error // reported after a ";", the worse fault
	line := func(i int) int { return strings.Count(q[:i], "\n") + 1 }
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q) - i
			}
			i += end
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			end, ok := blockComment(q, i)
			if !ok {
				return fmt.Errorf("the source query has a /* comment that does not end (line %d)", line(i))
			}
			i = end
		case c == '\'':
			end, ok := quoted(q, i, i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isIdent(q[i-2])))
			if !ok {
				return fmt.Errorf("the source query has a string literal that does not end (line %d)", line(i))
			}
			i = end
		case c == '"':
			end, ok := quoted(q, i, false)
			if !ok {
				return fmt.Errorf("the source query has a quoted identifier that does not end (line %d)", line(i))
			}
			i = end
		case c == '$' && (i == 0 || !isIdent(q[i-1])):
			if m := paramRe.FindString(q[i:]); m != "" {
				return fmt.Errorf("the source query has a parameter %s (line %d): it takes none", m, line(i))
			}
			tag := dollarTagRe.FindString(q[i:])
			if tag == "" {
				i++
				continue
			}
			end := strings.Index(q[i+len(tag):], tag)
			if end < 0 {
				return fmt.Errorf("the source query has a %s-quoted string that does not end (line %d)", tag, line(i))
			}
			i += len(tag) + end + len(tag)
		case c == ';':
			return fmt.Errorf("the source query holds a \";\" outside its string literals and comments (line %d)"+want, line(i))
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 && parenErr == nil {
				parenErr = fmt.Errorf("the source query closes a parenthesis it did not open (line %d): it must be a query "+
					"that can be read as a subquery", line(i))
			}
			i++
		case isIdent(c) && (c < '0' || c > '9'):
			j := i
			for j < len(q) && isIdent(q[j]) {
				j++
			}
			if first == "" {
				first = strings.ToUpper(q[i:j])
			}
			i = j
		default:
			i++
		}
	}
	if parenErr != nil {
		return parenErr
	}
	if depth > 0 {
		return fmt.Errorf("the source query leaves %d parenthesis(es) open", depth)
	}
	if first != "SELECT" && first != "WITH" {
		return fmt.Errorf("the source query must start with SELECT or WITH" + want)
	}
	return nil
}

var (
	paramRe     = regexp.MustCompile(`^\$[0-9]+`)
	dollarTagRe = regexp.MustCompile(`^\$([A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$`)
)

func isIdent(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '$'
}

// blockComment returns the end of the (nesting) /* comment at i.
func blockComment(q string, i int) (int, bool) {
	depth := 0
	for i < len(q) {
		switch {
		case strings.HasPrefix(q[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(q[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return i, false
}

// quoted returns the end of the string literal or quoted identifier at i
// (its quote is q[i]): a doubled quote stands for one; in an E” string a
// backslash escapes the next character.
func quoted(q string, i int, escapes bool) (int, bool) {
	mark := q[i]
	for i++; i < len(q); i++ {
		switch {
		case escapes && q[i] == '\\':
			i++
		case q[i] == mark && i+1 < len(q) && q[i+1] == mark:
			i++
		case q[i] == mark:
			return i + 1, true
		}
	}
	return i, false
}

// column is one column the query may return.
type column struct {
	name     string
	kind     string // "text" or "timestamptz"
	optional bool
}

// columns are the query's columns: the nine of every query, then the
// optional sources. The page query reads them in this order.
var columns = []column{
	{name: "external_id", kind: "text"},
	{name: "email", kind: "text"},
	{name: "phone", kind: "text"},
	{name: "sms_status", kind: "text"},
	{name: "sms_at", kind: "timestamptz"},
	{name: "call_status", kind: "text"},
	{name: "call_at", kind: "timestamptz"},
	{name: "email_status", kind: "text"},
	{name: "email_at", kind: "timestamptz"},
	{name: "sms_source", kind: "text", optional: true},
	{name: "call_source", kind: "text", optional: true},
	{name: "email_source", kind: "text", optional: true},
}

// textTypes are the database types read as text.
var textTypes = map[string]bool{"TEXT": true, "VARCHAR": true, "BPCHAR": true, "NAME": true}

// checkColumns checks the query's result columns (names and database types)
// and returns the select list of the page query: every column, NULL for an
// optional one the query lacks.
func checkColumns(cts []*sql.ColumnType) (string, error) {
	got := map[string]string{}
	for _, ct := range cts {
		name := ct.Name()
		if _, dup := got[name]; dup {
			return "", fmt.Errorf("the source query returns the column %s twice", name)
		}
		got[name] = strings.ToUpper(ct.DatabaseTypeName())
	}
	known := map[string]bool{}
	var list []string
	for _, c := range columns {
		known[c.name] = true
		typ, ok := got[c.name]
		switch {
		case !ok && c.optional:
			list = append(list, "NULL::text AS "+c.name)
			continue
		case !ok:
			return "", fmt.Errorf("the source query returns no column %s: it must return %s (see the README, User-table source)",
				c.name, columnNames())
		case c.kind == "text" && !textTypes[typ]:
			return "", fmt.Errorf("the source query's column %s is %s: want text (cast it: ...::text AS %s)", c.name, typeName(typ), c.name)
		case c.kind == "timestamptz" && typ == "TIMESTAMP":
			return "", fmt.Errorf("the source query's column %s is a timestamp without time zone: say which zone it is in "+
				"(e.g. created_at AT TIME ZONE 'Europe/Istanbul' AS %s) to make it a timestamptz", c.name, c.name)
		case c.kind == "timestamptz" && typ != "TIMESTAMPTZ":
			return "", fmt.Errorf("the source query's column %s is %s: want timestamptz (NULL::timestamptz when there is none)", c.name, typeName(typ))
		}
		list = append(list, "q."+c.name)
	}
	for _, ct := range cts {
		if !known[ct.Name()] {
			return "", fmt.Errorf("the source query returns a column %q that is not read: want only %s", ct.Name(), columnNames())
		}
	}
	return strings.Join(list, ", "), nil
}

// sqlTypeNames are the SQL names of the driver's internal type names.
var sqlTypeNames = map[string]string{"INT2": "smallint", "INT4": "integer", "INT8": "bigint", "FLOAT4": "real",
	"FLOAT8": "double precision", "BOOL": "boolean", "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamptz"}

func typeName(t string) string {
	if t == "" {
		return "of a type the driver does not know"
	}
	if n, ok := sqlTypeNames[t]; ok {
		return n
	}
	return strings.ToLower(t)
}

func columnNames() string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.name
		if c.optional {
			names[i] += " (optional)"
		}
	}
	return strings.Join(names, ", ")
}
