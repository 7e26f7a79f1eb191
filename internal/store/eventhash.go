package store

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
)

// eventFields are the fields of an event that its hash covers, as
// consent_event_hash (0011_consent_events.sql) takes them; nil pointers are
// SQL's NULL.
type eventFields struct {
	seq                                    int32
	at                                     time.Time
	kind, origin, status                   string
	consentDate                            time.Time
	source, recipientType, externalID      string
	version                                int64
	state                                  string
	importID                               *int64
	requestID, subrequestID, transactionID *string
	creationDate                           *time.Time
	outcome, iysCode, iysMessage           *string
}

// pgEpoch is PostgreSQL's: its timestamps count microseconds from it.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// eventHash is consent_event_hash computed in Go, byte for byte: the import
// hashes its new records' first events while it streams them (see
// copyWriter.staged and copyWriter.record), so that PostgreSQL does not, one
// call at a time, in the merge. TestEventHashMatchesSQL holds the two
// together.
func eventHash(prev []byte, f eventFields) []byte {
	var h eventHasher
	sum := h.sum(prev, &f)
	return sum[:]
}

// eventHasher hashes events in one buffer that it keeps: the import hashes a
// million without garbage.
type eventHasher struct{ b []byte }

func (h *eventHasher) sum(prev []byte, f *eventFields) [sha256.Size]byte {
	b := append(h.b[:0], prev...)
	b = binary.BigEndian.AppendUint32(b, uint32(f.seq))
	b = appendTime(b, f.at)
	b = appendTime(b, f.consentDate)
	b = binary.BigEndian.AppendUint64(b, uint64(f.version))
	importID := int64(-1)
	if f.importID != nil {
		importID = *f.importID
	}
	b = binary.BigEndian.AppendUint64(b, uint64(importID))
	if f.creationDate != nil {
		b = appendTime(b, *f.creationDate)
	} else {
		b = binary.BigEndian.AppendUint64(b, 1<<63) // -infinity: the smallest int64
	}
	for _, s := range []string{f.kind, f.origin, f.status, f.source, f.recipientType, f.externalID, f.state} {
		b = append(append(b, s...), 0x1f)
	}
	for _, s := range []*string{f.requestID, f.subrequestID, f.transactionID, f.outcome, f.iysCode, f.iysMessage} {
		if s != nil {
			b = append(b, *s...)
		}
		b = append(b, 0x1f)
	}
	h.b = b
	return sha256.Sum256(b)
}

// appendTime appends t as timestamptz_send does: microseconds from pgEpoch.
func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.Sub(pgEpoch).Microseconds()))
}

// eventStamp says where the rows of an import come from, so that the hash of
// the first event of a record a row creates is made as the row is staged
// (see copyWriter.staged and copyWriter.record); nil leaves it to the merge.
type eventStamp struct {
	at        time.Time // the transaction's now()
	kind      string    // "file" or "api"
	prefix    string    // file:NAME or api:TOKEN
	importID  int64
	requestID string
}

// originOf is the origin the merge gives a staged row (fragment Origin,
// staging.sql); the hash covers it, so the two must agree (verify checks
// it: TestStagingCopyKeepsValuesExactly).
func (st *eventStamp) originOf(r ImportRow) string {
	if st.kind == "api" {
		return st.prefix + ":" + strconv.Itoa(r.Line-1)
	}
	return st.prefix + ":" + strconv.Itoa(r.Line)
}

// firstEvent is the event of a record r creates: seq 1, version 1, pending.
func (st *eventStamp) firstEvent(r ImportRow) *eventFields {
	f := &eventFields{seq: 1, at: st.at, kind: st.kind, origin: st.originOf(r), status: string(r.Status),
		consentDate: r.ConsentDate.Time(), source: string(r.Source), recipientType: string(r.RecipientType),
		externalID: r.ExternalID, version: 1, state: "pending", importID: &st.importID}
	if st.requestID != "" {
		f.requestID = &st.requestID
	}
	return f
}
