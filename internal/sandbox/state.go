package sandbox

import (
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// The state is kept compact, because a sandbox must hold millions of
// consents: a record is a recipient and a pointer to its latest event; an
// event (a recorded change) holds the values; enumerations are small
// integers; dates are Unix seconds. Everything here is guarded by
// Sandbox.mu.

// kind packs a recipient type and a consent type.
type kind uint8

var (
	typeOrder  = []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta}
	rtypeOrder = []consent.RecipientType{consent.Bireysel, consent.Tacir}
)

func kindOf(rt consent.RecipientType, t consent.Type) kind {
	k := kind(0)
	if rt == consent.Tacir {
		k = 3
	}
	return k + kind(typeIndex(t))
}

func typeIndex(t consent.Type) int {
	for i, x := range typeOrder {
		if x == t {
			return i
		}
	}
	return 0
}

func (k kind) recipientType() consent.RecipientType { return rtypeOrder[k/3] }
func (k kind) typ() consent.Type                    { return typeOrder[k%3] }
func (k kind) typeIndex() int                       { return int(k % 3) }

// status is a consent status; statusNone marks a record İYS no longer holds.
type status uint8

const (
	statusNone status = iota
	statusOnay
	statusRet
)

func statusOf(s consent.Status) status {
	if s == consent.StatusRet {
		return statusRet
	}
	return statusOnay
}

func (s status) consent() consent.Status {
	if s == statusRet {
		return consent.StatusRet
	}
	return consent.StatusOnay
}

// table interns strings of a small, open set (sources, codes) as indexes.
type table[T comparable] struct {
	names []T
	index map[T]int
}

func newTable[T comparable](names ...T) *table[T] {
	t := &table[T]{index: map[T]int{}}
	for _, n := range names {
		t.id(n)
	}
	return t
}

func (t *table[T]) id(n T) int {
	if i, ok := t.index[n]; ok {
		return i
	}
	t.names = append(t.names, n)
	t.index[n] = len(t.names) - 1
	return len(t.names) - 1
}

// brandSourceID is the index of each brand source in every state's source
// table (they come first, in this order), so that bulk items can be read
// without the lock.
var brandSourceID = func() map[consent.Source]uint16 {
	m := make(map[consent.Source]uint16, len(consent.BrandSources))
	for i, src := range consent.BrandSources {
		m[src] = uint16(i)
	}
	return m
}()

type brandKey struct{ iysCode, brandCode string }

type recKey struct {
	recipient string
	kind      kind
}

type record struct {
	recipient string
	kind      kind
	last      int32 // its latest event in the brand's log; -1 when İYS holds nothing
}

// event is one change of a record, in the brand's log, in creation order.
type event struct {
	rec         int32
	status      status
	hidden      bool // an admin overwrite: changes the record, not the feed
	source      uint16
	consentDate int64
	created     int64
	txn         uint64 // transaction number, formatted by ids.transactionID
}

type brandState struct {
	key    brandKey
	name   string
	master bool
	index  map[recKey]int32
	recs   []record
	events []event
	held   [3][3]int // records per type and status, for the brand listing
}

// state is everything a reset empties.
type state struct {
	ids      ids
	brands   map[brandKey]*brandState
	order    []*brandState // registration order, for stable listings
	requests map[string]*bulkRequest
	queue    []*bulkRequest // submitted, not yet processed, oldest first
	reqSeq   uint64
	txnSeq   uint64
	sources  *table[consent.Source]
	codes    *table[consent.Code] // index 0 is "": recorded
}

func newState(seed int64, generation uint64, brands []Brand) *state {
	st := &state{
		ids:      newIDs(seed, generation),
		brands:   map[brandKey]*brandState{},
		requests: map[string]*bulkRequest{},
		sources:  newTable(consent.BrandSources...),
		codes:    newTable[consent.Code](""),
	}
	for _, b := range brands {
		st.register(b)
	}
	return st
}

// register adds a brand, or renames it and makes it master.
func (st *state) register(b Brand) {
	bs := st.brand(brandKey{b.IYSCode, b.BrandCode}, true)
	if b.Name != "" {
		bs.name = b.Name
	}
	if b.Master {
		for _, o := range st.order {
			if o.key.iysCode == b.IYSCode {
				o.master = o == bs
			}
		}
	}
}

// brand finds a brand, registering it when create is set. The first brand
// of an İYS code is its master brand.
func (st *state) brand(k brandKey, create bool) *brandState {
	if b, ok := st.brands[k]; ok || !create {
		return b
	}
	b := &brandState{key: k, name: k.brandCode, master: true, index: map[recKey]int32{}}
	for _, o := range st.order {
		if o.key.iysCode == k.iysCode {
			b.master = false
			break
		}
	}
	st.brands[k] = b
	st.order = append(st.order, b)
	return b
}

// heldFor is what İYS holds for a key, for consent.Evaluate.
func (b *brandState) heldFor(k recKey) *consent.Held {
	if b == nil {
		return nil
	}
	i, ok := b.index[k]
	if !ok || b.recs[i].last < 0 {
		return nil
	}
	e := &b.events[b.recs[i].last]
	return &consent.Held{Status: e.status.consent(), ConsentDate: consent.NewDate(time.Unix(e.consentDate, 0))}
}

// latest is the event holding a key's current values, if any.
func (b *brandState) latest(k recKey) (*event, bool) {
	if b == nil {
		return nil, false
	}
	i, ok := b.index[k]
	if !ok || b.recs[i].last < 0 {
		return nil, false
	}
	return &b.events[b.recs[i].last], true
}

// apply records a change of a key and returns its event.
func (b *brandState) apply(k recKey, e event) *event {
	i, ok := b.index[k]
	if !ok {
		i = int32(len(b.recs))
		b.recs = append(b.recs, record{recipient: k.recipient, kind: k.kind, last: -1})
		b.index[k] = i
	}
	b.forget(i)
	e.rec = i
	b.events = append(b.events, e)
	b.recs[i].last = int32(len(b.events) - 1)
	b.held[k.kind.typeIndex()][e.status]++
	return &b.events[len(b.events)-1]
}

// forget drops what İYS holds for record i; its past events stay.
func (b *brandState) forget(i int32) {
	r := &b.recs[i]
	if r.last >= 0 {
		b.held[r.kind.typeIndex()][b.events[r.last].status]--
		r.last = -1
	}
}

// record is a change made now, with a new transaction number.
func (st *state) record(b *brandState, k recKey, c consent.Consent, created time.Time, hidden bool) *event {
	st.txnSeq++
	return b.apply(k, event{
		status:      statusOf(c.Status),
		hidden:      hidden,
		source:      uint16(st.sources.id(c.Source)),
		consentDate: c.ConsentDate.Time().Unix(),
		created:     created.Unix(),
		txn:         st.txnSeq,
	})
}

// recordJSON is a record as the status query and the admin listing show it.
type recordJSON struct {
	IYSCode       string `json:"iysCode,omitempty"`
	BrandCode     string `json:"brandCode,omitempty"`
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
	CreationDate  string `json:"creationDate"`
	TransactionID string `json:"transactionId"`
}

func (st *state) recordJSON(b *brandState, e *event) recordJSON {
	r := b.recs[e.rec]
	return recordJSON{
		Recipient:     r.recipient,
		RecipientType: string(r.kind.recipientType()),
		Type:          string(r.kind.typ()),
		Status:        string(e.status.consent()),
		ConsentDate:   formatDate(time.Unix(e.consentDate, 0)),
		Source:        string(st.sources.names[e.source]),
		CreationDate:  formatDate(time.Unix(e.created, 0)),
		TransactionID: st.ids.transactionID(e.txn),
	}
}
