package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/store"
)

// IYS is what the reconciliation asks of İYS (an *iysclient.Client).
type IYS interface {
	ChangeFile(ctx context.Context, iysCode, brandCode string, day time.Time) (io.ReadCloser, error)
	ChangeSummary(ctx context.Context, iysCode, brandCode string, day time.Time, rt consent.RecipientType) (json.RawMessage, error)
	RecipientsStatus(ctx context.Context, iysCode, brandCode string, rt consent.RecipientType, t consent.Type, recipients []string) ([]string, error)
	ConsentStatus(ctx context.Context, iysCode, brandCode string, q iysclient.StatusQuery) (*iysclient.Record, error)
}

// Store is what it reads and repairs of our records (a *store.Store).
type Store interface {
	RecordsOfKeys(ctx context.Context, connectorID int64, keys []consent.Key, fn func(store.Record) error) error
	SyncedBetween(ctx context.Context, connectorID int64, outcome consent.Outcome, from, to time.Time, fn func(store.Record) error) error
	ApplyReconciled(ctx context.Context, connectorID int64, changes []store.Change) (int, error)
	Resend(ctx context.Context, connectorID int64, recs []store.RecordVersion) (int, error)
}

// recipientsPerQuery is how many recipients one bulk status query asks
// about. İYS's limit is not known [guess]: the bulk requests' 1000.
const recipientsPerQuery = consent.MaxBulkSize

// Report is one day's reconciliation.
type Report struct {
	Day        Day
	BrandCode  string
	FileRows   int   // rows of İYS's day file
	Unreadable []int // its lines that could not be compared (key, status or date unreadable)
	Records    int   // records of interest: the file's keys and ours İYS accepted that day
	LookedUp   int   // of which İYS was asked one by one
	Findings   []Finding
	// SummaryMismatch are the daily summary's counts that disagree with
	// the file or with our records; SummaryUnread names the recipient types
	// whose summary could not be read (and was not compared).
	SummaryMismatch []Mismatch
	SummaryUnread   map[consent.RecipientType]string
	Repaired        int // records changed by the repair
	Unrepaired      int // drifting records the repair left as they were
}

// Kinds counts the findings by kind, every kind present.
func (r *Report) Kinds() map[Kind]int {
	m := make(map[Kind]int, len(Kinds))
	for _, k := range Kinds {
		m[k] = 0
	}
	for _, f := range r.Findings {
		m[f.Kind]++
	}
	return m
}

// Drift is the number of drifting records.
func (r *Report) Drift() int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind.Drift() {
			n++
		}
	}
	return n
}

// Clean reports whether nothing is left to look at: no drift (or all of
// it repaired) and a summary that agrees.
func (r *Report) Clean(repaired bool) bool {
	left := r.Drift()
	if repaired {
		left = r.Unrepaired
	}
	return left == 0 && len(r.SummaryMismatch) == 0
}

// Run reconciles connector c for day, and with repair brings our records to
// İYS's state. The day must be over: İYS makes its file the day after.
func Run(ctx context.Context, iys IYS, st Store, c consent.ConnectorRef, day Day, repair bool, log *zap.Logger) (*Report, error) {
	if log == nil {
		log = zap.NewNop()
	}
	rep := &Report{Day: day, BrandCode: c.BrandCode, SummaryUnread: map[consent.RecipientType]string{}}
	file, err := readDayFile(ctx, iys, c, day)
	if err != nil {
		return nil, err
	}
	rep.FileRows, rep.Unreadable = file.Rows, file.Unreadable

	in := Input{Day: day, File: file.Latest, Ours: map[consent.Key]Ours{}}
	keep := func(r store.Record) error {
		in.Ours[consent.Key{Recipient: r.Recipient, RecipientType: r.RecipientType, Type: r.Type}] = oursOf(r)
		return nil
	}
	fileKeys := make([]consent.Key, 0, len(file.Latest))
	for k := range file.Latest {
		fileKeys = append(fileKeys, k)
	}
	if err := st.RecordsOfKeys(ctx, c.ID, fileKeys, keep); err != nil {
		return nil, err
	}
	if err := st.SyncedBetween(ctx, c.ID, consent.OutcomeAccepted, day.Start, day.End, keep); err != nil {
		return nil, err
	}

	keys := in.Keys()
	rep.Records = len(keys)
	onay, err := onayNow(ctx, iys, c, keys)
	if err != nil {
		return nil, err
	}
	lookedUp := map[consent.Key]*Held{}
	for _, k := range keys {
		if !in.NeedsLookup(k, onay[k]) {
			continue
		}
		h, err := lookUp(ctx, iys, c, k)
		if err != nil {
			return nil, err
		}
		lookedUp[k] = h
	}
	rep.LookedUp = len(lookedUp)
	rep.Findings = Compare(in, lookedUp)

	summaries := map[consent.RecipientType][]SummaryRow{}
	for _, rt := range []consent.RecipientType{consent.Bireysel, consent.Tacir} {
		raw, err := iys.ChangeSummary(ctx, c.IYSCode, c.BrandCode, day.Start, rt)
		if err != nil {
			return nil, fmt.Errorf("reconcile %s %s: %w", c.BrandCode, day, err)
		}
		rows, err := ParseSummary(rt, raw)
		if err != nil {
			rep.SummaryUnread[rt] = err.Error()
			log.Warn("daily summary not compared", zap.String("brand_code", c.BrandCode), zap.Stringer("day", day),
				zap.String("recipient_type", string(rt)), zap.Error(err))
			continue
		}
		summaries[rt] = rows
	}
	rep.SummaryMismatch = CompareSummary(summaries, file.Counts, in.AcceptedCounts(lookedUp))

	log.Info("reconciled a day", zap.String("brand_code", c.BrandCode), zap.Stringer("day", day),
		zap.Int("file_rows", rep.FileRows), zap.Int("records", rep.Records), zap.Int("looked_up", rep.LookedUp),
		zap.Int("drift", rep.Drift()), zap.Int("summary_mismatches", len(rep.SummaryMismatch)))
	if repair {
		if err := repairDrift(ctx, st, c, rep); err != nil {
			return nil, err
		}
		log.Info("repaired a day's drift", zap.String("brand_code", c.BrandCode), zap.Stringer("day", day),
			zap.Int("repaired", rep.Repaired), zap.Int("unrepaired", rep.Unrepaired))
	}
	return rep, nil
}

func readDayFile(ctx context.Context, iys IYS, c consent.ConnectorRef, day Day) (File, error) {
	rc, err := iys.ChangeFile(ctx, c.IYSCode, c.BrandCode, day.Start)
	if err != nil {
		return File{}, fmt.Errorf("reconcile %s %s: %w", c.BrandCode, day, err)
	}
	defer rc.Close()
	rows, err := iysclient.NewChangeFileReader(rc)
	if err != nil {
		return File{}, fmt.Errorf("reconcile %s %s: %w", c.BrandCode, day, err)
	}
	f, err := ReadFile(rows)
	if err != nil {
		return File{}, fmt.Errorf("reconcile %s %s: %w", c.BrandCode, day, err)
	}
	return f, nil
}

func oursOf(r store.Record) Ours {
	return Ours{ID: r.ID, Version: r.Version, Status: r.Status, ConsentDate: r.ConsentDate, Source: r.Source,
		State: r.State, Outcome: r.Outcome.V, SyncedAt: r.SyncedAt.Time}
}

// onayNow asks İYS which of keys hold ONAY now, per recipient type and
// type, recipientsPerQuery at a time (keys come sorted by those).
func onayNow(ctx context.Context, iys IYS, c consent.ConnectorRef, keys []consent.Key) (map[consent.Key]bool, error) {
	out := make(map[consent.Key]bool, len(keys))
	for len(keys) > 0 {
		n := 1
		for n < len(keys) && n < recipientsPerQuery &&
			keys[n].RecipientType == keys[0].RecipientType && keys[n].Type == keys[0].Type {
			n++
		}
		group := keys[:n]
		keys = keys[n:]
		recipients := make([]string, n)
		for i, k := range group {
			recipients[i] = k.Recipient
		}
		listed, err := iys.RecipientsStatus(ctx, c.IYSCode, c.BrandCode, group[0].RecipientType, group[0].Type, recipients)
		if err != nil {
			return nil, fmt.Errorf("reconcile %s: %w", c.BrandCode, err)
		}
		for _, r := range listed {
			if rec, err := consent.NormalizeRecipient(group[0].Type, r); err == nil {
				out[consent.Key{Recipient: rec, RecipientType: group[0].RecipientType, Type: group[0].Type}] = true
			}
		}
	}
	return out, nil
}

// lookUp is İYS's current record of k; nil when İYS holds none.
func lookUp(ctx context.Context, iys IYS, c consent.ConnectorRef, k consent.Key) (*Held, error) {
	r, err := iys.ConsentStatus(ctx, c.IYSCode, c.BrandCode,
		iysclient.StatusQuery{Recipient: k.Recipient, RecipientType: k.RecipientType, Type: k.Type})
	if errors.Is(err, iysclient.ErrNoRecord) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reconcile %s: %w", c.BrandCode, err)
	}
	h := HeldOf(*r)
	return &h, nil
}

// repairDrift applies İYS's record to missing_here and status_differs
// (newest-wins: a tie keeps ours) and sends only_here_synced again.
func repairDrift(ctx context.Context, st Store, c consent.ConnectorRef, rep *Report) error {
	var changes []store.Change
	var resend []store.RecordVersion
	for _, f := range rep.Findings {
		switch f.Kind {
		case MissingHere, StatusDiffers:
			if f.IYS.Source == "" { // a file without a source column: nothing to store as the record's
				continue
			}
			changes = append(changes, store.Change{Recipient: f.Key.Recipient, RecipientType: f.Key.RecipientType,
				Type: f.Key.Type, Status: f.IYS.Status, ConsentDate: f.IYS.ConsentDate, Source: f.IYS.Source,
				TransactionID: f.IYS.TransactionID})
		case OnlyHereSynced:
			resend = append(resend, store.RecordVersion{ID: f.Ours.ID, Version: f.Ours.Version})
		}
	}
	applied, err := st.ApplyReconciled(ctx, c.ID, changes)
	if err != nil {
		return fmt.Errorf("repair %s: %w", c.BrandCode, err)
	}
	resent, err := st.Resend(ctx, c.ID, resend)
	if err != nil {
		return fmt.Errorf("repair %s: %w", c.BrandCode, err)
	}
	rep.Repaired = applied + resent
	rep.Unrepaired = rep.Drift() - rep.Repaired
	return nil
}
