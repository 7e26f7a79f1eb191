package upload

import (
	"hash/maphash"
	"math"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Tracker tells, without a database, which valid lines lose to another line
// for the same record (recipient, recipient type, İYS type), so that
// import --dry-run can report each file's superseded count as a real import
// would.
//
// Files are read in the order given. Call StartFile before each file's lines
// and Observe once per valid line, with every type the line registers.
// Observe returns by how much that file's superseded count grows;
// Superseded is the running total of the current file. The rules:
//
//   - A record is won by the line with the latest timestamp. On equal
//     timestamps the later line wins (later line of a file, later file).
//   - superseded(file) counts the lines of that file that lose, either against
//     the state earlier files left or against another line of the same file.
//     A line of an earlier file that loses to this file's line is counted
//     nowhere: its file's count was final when its file ended.
//   - A line identical to the winner of an earlier file (same timestamp,
//     status, source and external id) changes nothing and is not superseded.
//     Within one file, the later of two equal-timestamp lines wins even when
//     they are identical, so the earlier one counts.
//   - A line counts once, however many types it registers (MESAJ,ARAMA) and on
//     however many of them it loses.
//
// Memory: one table slot per record, a 64-bit hash of the key and 12 bytes
// (27 to 54 bytes a record with the table's free slots). Two distinct keys
// share a hash with odds of about n²/2⁶⁵ (3·10⁻⁸ for a million records), and
// two different lines share a fingerprint of status, source and external id
// with odds of 2⁻²⁶; either would only miscount a warning of a dry run.
type Tracker struct {
	seed      maphash.Seed
	h         maphash.Hash
	records   table
	seq       uint32 // of the last observed line, from 1
	fileStart uint32 // first seq of the current file
	current   int    // superseded count of the current file
}

// record is the winning line of one key.
type record struct {
	secs uint32 // consent date, Unix seconds (upload dates are 2015 to now)
	seq  uint32 // the line's number across all files
	fp   uint32 // fingerprint of status, source and external id; lostBit when counted
}

// lostBit marks a winning line of the current file that is already counted
// as superseded (it lost on another of its types): it is never counted twice.
const lostBit = 1 << 31

// NewTracker returns an empty Tracker, ready for its first file.
func NewTracker() *Tracker {
	t := &Tracker{seed: maphash.MakeSeed()}
	t.h.SetSeed(t.seed)
	t.fileStart = 1
	return t
}

// StartFile begins the next file: the lines observed from now on are its
// lines, and Superseded starts again from 0.
func (t *Tracker) StartFile() {
	t.fileStart = t.seq + 1
	t.current = 0
}

// Superseded returns how many lines of the current file lose so far.
func (t *Tracker) Superseded() int { return t.current }

// Records returns how many (recipient, recipient type, type) keys are held.
func (t *Tracker) Records() int { return t.records.n }

// Observe records a valid line for each of its types (İYS types) and returns
// the growth of the current file's superseded count: beaten is the number of
// earlier lines of this file that this line just beat, each counted once;
// lost tells whether the line itself lost, on at least one type. Lines are
// numbered in a uint32 across all files: 4 billion lines at most.
func (t *Tracker) Observe(l Line, rt consent.RecipientType, types []consent.Type) (beaten int, lost bool) {
	t.seq++
	mine := record{secs: unixSeconds(l.ConsentDate), seq: t.seq, fp: fingerprint(&t.h, l)}
	for _, typ := range types {
		k := t.key(l.Recipient, rt, typ)
		old, ok := t.records.get(k)
		switch {
		case !ok:
		case old.seq == mine.seq:
			continue // the type was named twice
		case mine.secs < old.secs:
			lost = true
			continue
		case mine.secs == old.secs && old.seq < t.fileStart && old.fp&^lostBit == mine.fp:
			continue // identical to an earlier file's winner: no change
		case old.seq >= t.fileStart && old.fp&lostBit == 0:
			beaten++
			t.markLost(l.Recipient, rt, old.seq)
		}
		t.records.put(k, mine)
	}
	if lost {
		t.current++
		t.markLost(l.Recipient, rt, mine.seq) // on the types it won
	}
	t.current += beaten
	return beaten, lost
}

// markLost flags the records still held by a line that was just counted as
// superseded, so that losing them later does not count it again. They share
// its recipient and recipient type, and differ in type only.
func (t *Tracker) markLost(recipient string, rt consent.RecipientType, seq uint32) {
	for _, typ := range consent.Types {
		k := t.key(recipient, rt, typ)
		if r, ok := t.records.get(k); ok && r.seq == seq {
			r.fp |= lostBit
			t.records.put(k, r)
		}
	}
}

func (t *Tracker) key(recipient string, rt consent.RecipientType, typ consent.Type) uint64 {
	t.h.Reset()
	t.h.WriteString(recipient)
	t.h.WriteByte(0)
	t.h.WriteString(string(rt))
	t.h.WriteByte(0)
	t.h.WriteString(string(typ))
	return t.h.Sum64()
}

// fingerprint packs status and source exactly and the external id as a hash,
// leaving lostBit clear.
func fingerprint(h *maphash.Hash, l Line) uint32 {
	var fp uint32
	if l.Status == consent.StatusRet {
		fp = 1
	}
	for i, s := range consent.BrandSources {
		if s == l.Source {
			fp |= uint32(i+1) << 1 // 0 for a source outside the list
			break
		}
	}
	h.Reset()
	h.WriteString(l.ExternalID)
	return fp | uint32(h.Sum64()>>38)<<5 // 26 bits, below lostBit
}

// unixSeconds clamps to uint32, which holds every date a Scanner accepts
// (2015 until 2106); only the order of dates matters here.
func unixSeconds(d consent.Date) uint32 {
	switch u := d.Time().Unix(); {
	case u < 0:
		return 0
	case u > math.MaxUint32:
		return math.MaxUint32
	default:
		return uint32(u)
	}
}
