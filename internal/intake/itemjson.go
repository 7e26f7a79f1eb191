package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// duplicateKeyError names a key an item gives twice: encoding/json keeps
// the last silently, and which of two consents the client meant is unknown.
type duplicateKeyError struct{ key string }

func (e *duplicateKeyError) Error() string { return fmt.Sprintf("the key %q is given twice", e.key) }

// UnmarshalJSON reads an item as encoding/json reads the struct, unknown
// keys refused, and refuses a key given twice. Keys match their field
// whatever their case, as encoding/json matches them, so "status" and
// "Status" are the same key.
func (it *wireItem) UnmarshalJSON(b []byte) error {
	type plain wireItem // without this method
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode((*plain)(it)); err != nil {
		return err
	}
	return duplicateKey(b)
}

// duplicateKey walks the keys of b, an object of strings and nulls (the
// decoding before has checked that), and reports the first key repeated.
func duplicateKey(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil { // {
		return err
	}
	var seen []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return err
		}
		key, _ := k.(string)
		for _, s := range seen {
			if strings.EqualFold(s, key) {
				return &duplicateKeyError{key: key}
			}
		}
		seen = append(seen, key)
		if _, err := d.Token(); err != nil { // the value
			return err
		}
	}
	return nil
}
