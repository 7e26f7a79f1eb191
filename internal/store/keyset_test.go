package store

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// keySet holds every key it was given across its growths, and tells a key
// from the same recipient's other type.
func TestKeySetTellsAKeyTwice(t *testing.T) {
	s := newKeySet()
	row := func(i int, typ consent.Type) ImportRow {
		return ImportRow{Recipient: fmt.Sprintf("+90533%07d", i), RecipientType: consent.Bireysel, Type: typ}
	}
	const n = 100_000 // past several growths
	for i := range n {
		if s.add(row(i, consent.TypeMesaj)) {
			t.Fatalf("key %d seen before it was added", i)
		}
	}
	for i := range n {
		if !s.add(row(i, consent.TypeMesaj)) {
			t.Fatalf("key %d not seen the second time", i)
		}
		if s.add(row(i, consent.TypeArama)) {
			t.Fatalf("key %d's ARAMA taken for its MESAJ", i)
		}
	}
	if s.n != 2*n {
		t.Fatalf("%d keys held, want %d", s.n, 2*n)
	}
}

// scanKeysTwice says twice exactly when a key comes twice, and stops when told.
func TestScanKeysTwice(t *testing.T) {
	rows := phones(t, 500)
	scan := func(src RowSource, stopFirst bool) bool {
		var twice, stop atomic.Bool
		stop.Store(stopFirst)
		scanKeysTwice(src, &twice, &stop)()
		return twice.Load()
	}
	if scan(fromSlice(rows...), false) {
		t.Error("a key twice in a file without one")
	}
	withTwice := append(rows[:len(rows):len(rows)], rows[250])
	if !scan(fromSlice(withTwice...), false) {
		t.Error("no key twice found in a file with one")
	}
	if scan(fromSlice(withTwice...), true) {
		t.Error("a stopped scan went on")
	}
}
