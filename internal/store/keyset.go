package store

import "hash/maphash"

// keySet is a set of records' keys, as 64-bit hashes in open addressing
// (16 bytes a key at most, no pointers), for the scan of a first file for a
// key twice (scanKeysTwice, which stops it at maxScannedKeys).
type keySet struct {
	h     maphash.Hash
	slots []uint64 // 0 is empty; a hash of 0 is kept as 1
	n     int
}

func newKeySet() *keySet {
	s := &keySet{}
	s.h.SetSeed(maphash.MakeSeed())
	return s
}

// add adds r's key and tells whether it was there. Two keys whose hashes
// are equal count as one: a first file with no key twice is then merged
// (odds of about 3 in 100 million at a million keys), never stored wrong.
func (s *keySet) add(r ImportRow) bool {
	s.h.Reset()
	s.h.WriteString(r.Recipient)
	s.h.WriteByte(0)
	s.h.WriteString(string(r.RecipientType))
	s.h.WriteByte(0)
	s.h.WriteString(string(r.Type))
	k := max(s.h.Sum64(), 1)
	if 2*(s.n+1) > len(s.slots) {
		old := s.slots
		s.slots, s.n = make([]uint64, max(1<<12, 2*len(old))), 0
		for _, k := range old {
			if k != 0 {
				s.put(k)
			}
		}
	}
	return s.put(k)
}

// put puts hash k (not 0) in its slot, and tells whether it was there.
func (s *keySet) put(k uint64) bool {
	mask := uint64(len(s.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = k
			s.n++
			return false
		case k:
			return true
		}
	}
}
