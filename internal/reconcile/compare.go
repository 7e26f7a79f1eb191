// Package reconcile compares one Türkiye day of İYS's records with ours
// (Mutabakat): İYS's daily change file and daily summary, and for the
// records that call for it İYS's current record, against our consent
// records. The comparison (ReadFile, Input, Compare, CompareSummary) is
// pure; Run fetches its inputs, and with repair brings our records to
// İYS's state.
//
// # What a day file can prove
//
// A day's file lists the changes İYS recorded that day, both sides (the
// brand's HS_* and the citizens' IYS_*). A record nobody changed that day is
// not in it, and is none of this day's business. The records of interest
// are therefore the keys the file lists, and the records we say İYS
// accepted that day (synced with outcome accepted, synced_at in the day):
// those the file should list.
//
// A file is a day old by the time it can be read, and İYS's admin can
// change a record without a line in any file; so the file's last word on a
// key is checked against İYS's current one. Cheaply first: one bulk
// "which of these hold ONAY" query per 1000 keys of a recipient type and
// type. Then, one by one (about 100 an hour are allowed [seen]), only the
// keys whose answer disagrees with what we expect İYS to hold, and the keys
// we say İYS accepted that day that the file does not show as last.
//
// # Kinds
//
// Drift (exit 3, repaired by --repair):
//
//	missing_here      İYS holds a record of a key we hold none of.
//	status_differs    İYS's record is newer than ours (a citizen's change not
//	                  pulled yet, an overwrite), or differs at the same consent
//	                  date. Repair: İYS's record, newest-wins, as the pull does
//	                  (a tie is not repaired: newest-wins keeps ours).
//	only_here_synced  we say synced, but İYS holds nothing for the key, or
//	                  (asked) an older consent than ours. Repair: back to
//	                  pending, to be sent again (brand sources only).
//
// Not drift, reported apart:
//
//	ours_newer_unsent   ours is newer than İYS's and not sent yet (pending, in
//	                    flight, failed): the next run sends it.
//	ours_newer_rejected ours is newer than İYS's but İYS refused it: the record
//	                    says so already (report --state rejected).
package reconcile

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
)

// Kind is what a record of interest turned out to be.
type Kind string

// Kinds of docs/cli.md, drift first.
const (
	MissingHere       Kind = "missing_here"
	StatusDiffers     Kind = "status_differs"
	OnlyHereSynced    Kind = "only_here_synced"
	OursNewerUnsent   Kind = "ours_newer_unsent"
	OursNewerRejected Kind = "ours_newer_rejected"
)

// Kinds lists every kind in report order.
var Kinds = []Kind{MissingHere, StatusDiffers, OnlyHereSynced, OursNewerUnsent, OursNewerRejected}

// Drift reports whether the kind is drift (else it is only reported).
func (k Kind) Drift() bool { return k == MissingHere || k == StatusDiffers || k == OnlyHereSynced }

// Describe says what the kind means, for the text report.
func (k Kind) Describe() string {
	switch k {
	case MissingHere:
		return "İYS holds a record we have none of"
	case StatusDiffers:
		return "İYS's record is newer than ours, or differs at the same date"
	case OnlyHereSynced:
		return "we say synced, İYS does not hold our consent"
	case OursNewerUnsent:
		return "ours is newer and not sent yet: the next run sends it"
	case OursNewerRejected:
		return "ours is newer but İYS refused it (report --state rejected)"
	}
	return ""
}

// Day is a Türkiye calendar day, [Start, End).
type Day struct {
	Start, End time.Time
}

// ParseDay reads YYYY-MM-DD as a day in Europe/Istanbul.
func ParseDay(s string) (Day, error) {
	t, err := time.ParseInLocation(iysclient.ReportDateLayout, s, consent.Istanbul)
	if err != nil {
		return Day{}, fmt.Errorf("%q is not a date YYYY-MM-DD", s)
	}
	return Day{Start: t, End: t.AddDate(0, 0, 1)}, nil
}

// String is the day as YYYY-MM-DD.
func (d Day) String() string { return d.Start.Format(iysclient.ReportDateLayout) }

// Over reports whether the day has ended at now: İYS makes a day's change
// file and summary the day after, so only a day that is over can be
// reconciled.
func (d Day) Over(now time.Time) bool { return !d.End.After(now) }

// Contains reports whether t falls in the day.
func (d Day) Contains(t time.Time) bool { return !t.Before(d.Start) && t.Before(d.End) }

// Ours is our record of a key, as the comparison needs it.
type Ours struct {
	ID          int64
	Version     int64
	Status      consent.Status
	ConsentDate consent.Date
	Source      consent.Source
	State       consent.State
	Outcome     consent.Outcome // "" when the record has none
	SyncedAt    time.Time       // zero when not synced
}

// Held is a consent as İYS listed or holds it.
type Held struct {
	Status        consent.Status
	ConsentDate   consent.Date
	Source        consent.Source
	CreationDate  consent.Date
	TransactionID string
}

// FileChange is İYS's last change of a key in the day file.
type FileChange struct {
	Held
	Line int
}

// CountKey groups a day's changes as the daily summary counts them.
type CountKey struct {
	RecipientType consent.RecipientType
	Type          consent.Type
	Source        consent.Source
	Status        consent.Status
}

// File is what the comparison takes of a day file.
type File struct {
	Rows       int
	Latest     map[consent.Key]FileChange // per key, the change İYS created last (the later line on a tie)
	Unreadable []int                      // lines whose key, status or consent date cannot be read
	Counts     map[CountKey]int           // every row with a recipient type, type and status, as written
}

// ReadFile indexes a day file by our record keys as it streams by: what it
// keeps grows with the keys the day changed, not with the file.
func ReadFile(rows *iysclient.ChangeFileReader) (File, error) {
	f := File{Latest: map[consent.Key]FileChange{}, Counts: map[CountKey]int{}}
	for {
		row, err := rows.Next()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return File{}, err
		}
		f.Rows++
		r := row.Record
		if r.RecipientType != "" && r.Type != "" && r.Status != "" {
			f.Counts[CountKey{r.RecipientType, r.Type, r.Source, r.Status}]++
		}
		k, ok := key(r)
		if !ok || r.ConsentDate.IsZero() {
			f.Unreadable = append(f.Unreadable, row.Line)
			continue
		}
		c := FileChange{Held: heldOf(r), Line: row.Line}
		if prev, ok := f.Latest[k]; ok && prev.CreationDate.After(c.CreationDate) {
			continue
		}
		f.Latest[k] = c
	}
}

// key is an İYS record's key in our records' form.
func key(r iysclient.Record) (consent.Key, bool) {
	if _, err := consent.ParseType(string(r.Type)); err != nil {
		return consent.Key{}, false
	}
	if _, err := consent.ParseRecipientType(string(r.RecipientType)); err != nil {
		return consent.Key{}, false
	}
	if _, err := consent.ParseStatus(string(r.Status)); err != nil {
		return consent.Key{}, false
	}
	rec, err := consent.NormalizeRecipient(r.Type, r.Recipient)
	if err != nil {
		return consent.Key{}, false
	}
	return consent.Key{Recipient: rec, RecipientType: r.RecipientType, Type: r.Type}, true
}

func heldOf(r iysclient.Record) Held {
	return Held{Status: r.Status, ConsentDate: r.ConsentDate, Source: r.Source, CreationDate: r.CreationDate,
		TransactionID: r.TransactionID}
}

// HeldOf is İYS's answer to a status query as a Held.
func HeldOf(r iysclient.Record) Held { return heldOf(r) }

// Input is one day's comparison: İYS's file and our records of interest
// (those of the file's keys, and those we say İYS accepted that day).
type Input struct {
	Day  Day
	File map[consent.Key]FileChange
	Ours map[consent.Key]Ours
}

// acceptedThatDay reports whether we say İYS recorded o during the day.
func (in Input) acceptedThatDay(o Ours) bool {
	return o.State == consent.StateSynced && o.Outcome == consent.OutcomeAccepted && in.Day.Contains(o.SyncedAt)
}

// Keys are the records of interest, sorted.
func (in Input) Keys() []consent.Key {
	keys := make([]consent.Key, 0, len(in.File))
	for k := range in.File {
		keys = append(keys, k)
	}
	for k, o := range in.Ours {
		if _, listed := in.File[k]; !listed && in.acceptedThatDay(o) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

func compareKeys(a, b consent.Key) int {
	return cmp.Or(strings.Compare(string(a.RecipientType), string(b.RecipientType)),
		strings.Compare(string(a.Type), string(b.Type)), strings.Compare(a.Recipient, b.Recipient))
}

// ExpectOnay is whether İYS should hold ONAY for k now, as far as we know:
// the later (by consent date) of the file's last change and our record
// when we say it is synced; the file's on a tie.
func (in Input) ExpectOnay(k consent.Key) bool {
	f, listed := in.File[k]
	o, ours := in.Ours[k]
	synced := ours && o.State == consent.StateSynced
	switch {
	case listed && (!synced || !o.ConsentDate.After(f.ConsentDate)):
		return f.Status == consent.StatusOnay
	case synced:
		return o.Status == consent.StatusOnay
	}
	return false
}

// NeedsLookup is whether k's current record must be asked of İYS, given
// whether İYS's bulk query listed it as ONAY: when that disagrees with
// ExpectOnay, or when we say İYS accepted ours that day and the file does
// not show it last (neither ours nor a newer change).
func (in Input) NeedsLookup(k consent.Key, onayNow bool) bool {
	if onayNow != in.ExpectOnay(k) {
		return true
	}
	o, ours := in.Ours[k]
	if !ours || !in.acceptedThatDay(o) {
		return false
	}
	f, listed := in.File[k]
	return !listed || o.ConsentDate.After(f.ConsentDate) ||
		o.ConsentDate.Equal(f.ConsentDate) && o.Status != f.Status
}

// AcceptedCounts counts our records İYS accepted that day, as the daily
// summary counts changes, for CompareSummary. A record İYS was asked about
// and holds as ours, but which the file does not show last, was recorded on
// another day (its result came after midnight): it is not counted.
func (in Input) AcceptedCounts(lookedUp map[consent.Key]*Held) map[CountKey]int {
	out := map[CountKey]int{}
	for k, o := range in.Ours {
		if !in.acceptedThatDay(o) {
			continue
		}
		if h := lookedUp[k]; h != nil && h.Status == o.Status && h.ConsentDate.Equal(o.ConsentDate) {
			if f, listed := in.File[k]; !listed || f.Status != o.Status || !f.ConsentDate.Equal(o.ConsentDate) {
				continue
			}
		}
		out[CountKey{k.RecipientType, k.Type, o.Source, o.Status}]++
	}
	return out
}

// Finding is a record of interest that is drift, or worth reporting.
type Finding struct {
	Kind     Kind
	Key      consent.Key
	Ours     *Ours // nil: we hold no record
	IYS      *Held // İYS's record; nil: İYS holds none (only when LookedUp)
	Line     int   // the file's line of İYS's last change that day; 0 when not listed
	LookedUp bool  // IYS is İYS's current record (a status query), not the file's
}

// Compare classifies the records of interest. lookedUp holds İYS's
// current record of the keys that were asked (nil: İYS holds none); the
// other keys are judged by the file. A key neither listed nor asked proves
// nothing and is skipped. Findings come sorted by kind, then key.
func Compare(in Input, lookedUp map[consent.Key]*Held) []Finding {
	var out []Finding
	for _, k := range in.Keys() {
		f, listed := in.File[k]
		iys, asked := lookedUp[k]
		if !asked {
			if !listed {
				continue
			}
			iys = &f.Held
		}
		var ours *Ours
		if o, ok := in.Ours[k]; ok {
			ours = &o
		}
		kind := classify(ours, iys, asked)
		if kind == "" {
			continue
		}
		fd := Finding{Kind: kind, Key: k, Ours: ours, IYS: iys, LookedUp: asked}
		if listed {
			fd.Line = f.Line
		}
		out = append(out, fd)
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Compare(slices.Index(Kinds, a.Kind), slices.Index(Kinds, b.Kind))
	})
	return out
}

// classify compares our record with İYS's (nil: İYS holds none, known only
// when current). "" means in step.
func classify(o *Ours, iys *Held, current bool) Kind {
	switch {
	case iys == nil:
		if o != nil && o.State == consent.StateSynced {
			return OnlyHereSynced
		}
		return ""
	case o == nil:
		return MissingHere
	case o.Status == iys.Status && o.ConsentDate.Equal(iys.ConsentDate):
		return ""
	case o.State == consent.StateSynced && o.Outcome == consent.OutcomeAlreadyInIYS &&
		o.Status == iys.Status && !iys.ConsentDate.After(o.ConsentDate):
		return "" // İYS held this status from before ours, as the outcome says
	case !o.ConsentDate.After(iys.ConsentDate):
		return StatusDiffers
	}
	// Ours is newer.
	switch o.State {
	case consent.StatePending, consent.StateInFlight, consent.StateFailed:
		return OursNewerUnsent
	case consent.StateRejected:
		return OursNewerRejected
	}
	if current {
		return OnlyHereSynced // İYS holds an older consent than the one we say it took
	}
	return "" // ours went to İYS after that day
}
