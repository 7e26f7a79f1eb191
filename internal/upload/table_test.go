package upload

import (
	"math/rand/v2"
	"testing"
)

// The table must behave as a map, through growth and with the key 0.
func TestTableAgreesWithMap(t *testing.T) {
	var tab table
	want := map[uint64]record{}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []uint64{0, 1, 2, 1 << 63}
	for i := 0; i < 50000; i++ {
		k := rng.Uint64() >> uint(rng.IntN(60)) // many small keys: collisions in the low bits
		if i%7 == 0 && len(keys) > 0 {
			k = keys[rng.IntN(len(keys))]
		}
		keys = append(keys, k)
		r := record{secs: uint32(i), seq: uint32(i)}
		tab.put(k, r)
		want[nonZero(k)] = r
		if tab.n*4 > len(tab.keys)*3 {
			t.Fatalf("%d keys in %d slots: over 3/4 full", tab.n, len(tab.keys))
		}
		if i%997 == 0 {
			for _, k := range keys {
				got, ok := tab.get(k)
				w, wok := want[nonZero(k)]
				if ok != wok || got != w {
					t.Fatalf("after %d puts, get(%x) = %+v, %v; want %+v, %v", i, k, got, ok, w, wok)
				}
			}
		}
	}
	if tab.n != len(want) {
		t.Fatalf("n = %d, want %d", tab.n, len(want))
	}
	if _, ok := tab.get(0xdead_beef_0000_0000); ok && want[0xdead_beef_0000_0000] == (record{}) {
		t.Fatal("found a key never put")
	}
}
