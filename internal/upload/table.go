package upload

// table is an open-addressing hash table from a 64-bit key hash to a record:
// two flat arrays and linear probing, 20 bytes a slot at most 3/4 full, so 27
// to 54 bytes a record. A Go map of the same types costs 25 bytes a slot with
// loads down to 44% after its tables split, up to 65 bytes a record.
type table struct {
	keys []uint64 // 0 is an empty slot; a key of 0 is stored as 1
	vals []record
	n    int
}

const tableMinSize = 1 << 10

// slot returns where k is, or the empty slot where it would go.
func (t *table) slot(k uint64) (int, bool) {
	mask := len(t.keys) - 1
	for i := int(k) & mask; ; i = (i + 1) & mask {
		switch t.keys[i] {
		case k:
			return i, true
		case 0:
			return i, false
		}
	}
}

func (t *table) get(k uint64) (record, bool) {
	if t.n == 0 {
		return record{}, false
	}
	i, ok := t.slot(nonZero(k))
	return t.vals[i], ok
}

func (t *table) put(k uint64, r record) {
	k = nonZero(k)
	if (t.n+1)*4 > len(t.keys)*3 {
		t.grow()
	}
	i, ok := t.slot(k)
	if !ok {
		t.keys[i] = k
		t.n++
	}
	t.vals[i] = r
}

func (t *table) grow() {
	size := tableMinSize
	if len(t.keys) > 0 {
		size = 2 * len(t.keys)
	}
	old := *t
	*t = table{keys: make([]uint64, size), vals: make([]record, size)}
	for i, k := range old.keys {
		if k != 0 {
			j, _ := t.slot(k)
			t.keys[j], t.vals[j] = k, old.vals[i]
			t.n++
		}
	}
}

func nonZero(k uint64) uint64 {
	if k == 0 {
		return 1
	}
	return k
}
