package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// duplicateKeyError names a key an item gives twice: encoding/json keeps
// the last silently, and which of two consents the client meant is unknown.
type duplicateKeyError struct{ key string }

func (e *duplicateKeyError) Error() string { return fmt.Sprintf("the key %q is given twice", e.key) }

// unknownKeyError is a key that is no field of an item. Its text is
// encoding/json's for the same (Decoder.DisallowUnknownFields).
type unknownKeyError struct{ key string }

func (e *unknownKeyError) Error() string { return fmt.Sprintf("json: unknown field %q", e.key) }

// itemKeys are the JSON keys of wireItem's fields, in field order.
var itemKeys = func() []string {
	t := reflect.TypeFor[wireItem]()
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return keys
}()

// UnmarshalJSON reads one item as encoding/json reads the struct with
// DisallowUnknownFields (a key matches its field whatever its case, as
// bytes.EqualFold; a value is a string or null; the same errors), and also
// refuses a key given twice, "status" and "Status" alike, which
// encoding/json lets the last win. It reads b once: b is one valid JSON
// value, which the Decoder that hands it over has checked.
func (it *wireItem) UnmarshalJSON(b []byte) error {
	i := skipSpace(b, 0)
	switch {
	case bytes.HasPrefix(b[i:], []byte("null")):
		return nil
	case b[i] != '{':
		return &json.UnmarshalTypeError{Value: kindOf(b[i]), Type: reflect.TypeFor[wireItem]()}
	}
	v := reflect.ValueOf(it).Elem()
	var seen [16]bool // by field
	for i = skipSpace(b, i+1); b[i] != '}'; i = skipSpace(b, i) {
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		end := endOfString(b, i)
		key, err := unquote(b[i:end])
		if err != nil {
			return err
		}
		f := -1
		for j, k := range itemKeys {
			if strings.EqualFold(k, key) {
				f = j
				break
			}
		}
		switch {
		case f < 0:
			return &unknownKeyError{key: key}
		case seen[f]:
			return &duplicateKeyError{key: key}
		}
		seen[f] = true
		i = skipSpace(b, skipSpace(b, end)+1) // past the colon
		end = skipValue(b, i)
		switch b[i] {
		case '"':
			s, err := unquote(b[i:end])
			if err != nil {
				return err
			}
			v.Field(f).SetString(s)
		case 'n':
			v.Field(f).SetString("")
		default:
			return &json.UnmarshalTypeError{Value: kindOf(b[i]), Type: reflect.TypeFor[string](), Field: itemKeys[f]}
		}
		i = end
	}
	return nil
}

// kindOf names the JSON value that starts with c, as encoding/json's errors do.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// unquote reads a JSON string literal; most need no unescaping.
func unquote(lit []byte) (string, error) {
	s := lit[1 : len(lit)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), nil
	}
	var out string
	err := json.Unmarshal(lit, &out) // escapes, and invalid UTF-8 made U+FFFD
	return out, err
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just past the string that starts at b[i].
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++ // the escaped byte; a \u's hex digits are neither quote nor backslash
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			i = endOfString(b, i) - 1
			if depth == 0 {
				return i + 1
			}
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return i // the end of the enclosing object, after a number or literal
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return i // after a number or literal
		}
	}
	return i
}
