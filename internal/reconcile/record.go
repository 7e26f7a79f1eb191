package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
)

// Mode is how far serve's nightly reconciliation goes (IYS_RECONCILE).
type Mode string

// The modes of docs/cli.md.
const (
	ModeOff    Mode = "off"    // serve does not reconcile
	ModeReport Mode = "report" // drift is reported; records are left as they are
	ModeRepair Mode = "repair" // drift is repaired, as reconcile --repair does
)

// Recorder keeps reconciliations (a *store.Store).
type Recorder interface {
	Store
	RecordReconcile(ctx context.Context, r store.Reconcile, day string) (store.Reconcile, error)
	LastReconcile(ctx context.Context, connectorID int64) (store.Reconcile, bool, error)
}

// keepTimeout bounds the keeping of a reconciliation whose context ended.
const keepTimeout = 30 * time.Second

// logFindings bounds the drifting records logged one by one per day: the
// counts say the rest, the CSV of reconcile lists every one.
const logFindings = 20

// RunRecorded is Run, whose outcome is also kept (trigger: store's
// ReconcileBySchedule or ReconcileByCommand). A refusal by İYS (no
// reconciliation right) is kept as such. Keeping it is best effort: a
// failure is logged, not returned. row is what was kept (or would have
// been).
func RunRecorded(ctx context.Context, iys IYS, st Recorder, c consent.ConnectorRef, day Day, repair bool, trigger string,
	log *zap.Logger) (rep *Report, row store.Reconcile, err error) {
	if log == nil {
		log = zap.NewNop()
	}
	rep, err = Run(ctx, iys, st, c, day, repair, log)
	return rep, keep(ctx, st, rowOf(c, repair, trigger, rep, err), c, day, log), err
}

// keep stores row, even when ctx ended (the window closed: status must say
// so), and returns it as stored; a failure is logged.
func keep(ctx context.Context, st Recorder, row store.Reconcile, c consent.ConnectorRef, day Day, log *zap.Logger) store.Reconcile {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keepTimeout)
	defer cancel()
	kept, err := st.RecordReconcile(ctx, row, day.String())
	if err != nil {
		log.Error("reconciliation not recorded", zap.String("brand_code", c.BrandCode), zap.Stringer("day", day), zap.Error(err))
		return row
	}
	return kept
}

// rowOf is a reconciliation as the reconciles table keeps it.
func rowOf(c consent.ConnectorRef, repair bool, trigger string, rep *Report, err error) store.Reconcile {
	row := store.Reconcile{ConnectorID: c.ID, Mode: string(ModeReport), Trigger: trigger, Result: store.ReconcileDone}
	if repair {
		row.Mode = string(ModeRepair)
	}
	switch {
	case NoRight(err):
		row.Result, row.Error = store.ReconcileNoRight, sql.NullString{String: err.Error(), Valid: true} // scrubbed as stored
		return row
	case err != nil:
		row.Result, row.Error = store.ReconcileFailed, sql.NullString{String: err.Error(), Valid: true}
		return row
	}
	k := rep.Kinds()
	row.MissingHere, row.StatusDiffers, row.OnlyHereSynced = k[MissingHere], k[StatusDiffers], k[OnlyHereSynced]
	row.OursNewerUnsent, row.OursNewerRejected = k[OursNewerUnsent], k[OursNewerRejected]
	row.SummaryMismatches, row.Repaired, row.Unrepaired = len(rep.SummaryMismatch), rep.Repaired, rep.Drift()
	if repair {
		row.Unrepaired = rep.Unrepaired
	}
	return row
}

// logDrift logs a day's drifting records, at most logFindings of them, the
// recipients masked.
func logDrift(log *zap.Logger, rep *Report) {
	n := 0
	for _, f := range rep.Findings {
		if !f.Kind.Drift() {
			continue
		}
		if n++; n > logFindings {
			break
		}
		fields := []zap.Field{zap.String("brand_code", rep.BrandCode), zap.Stringer("day", rep.Day),
			zap.String("kind", string(f.Kind)), zap.String("recipient", consent.MaskRecipient(f.Key.Recipient)),
			zap.String("recipient_type", string(f.Key.RecipientType)), zap.String("type", string(f.Key.Type))}
		if f.Ours != nil {
			fields = append(fields, zap.String("our_status", string(f.Ours.Status)), zap.String("our_state", string(f.Ours.State)))
		}
		if f.IYS != nil {
			fields = append(fields, zap.String("iys_status", string(f.IYS.Status)), zap.String("iys_source", string(f.IYS.Source)))
		}
		log.Warn("drift", fields...)
	}
	if d := rep.Drift(); d > logFindings {
		log.Warn("more drift not logged one by one", zap.String("brand_code", rep.BrandCode), zap.Stringer("day", rep.Day),
			zap.Int("drift", d), zap.Int("logged", logFindings))
	}
}

// Nightly reconciles day for each of cs in mode (report or repair), one
// connector after the other, skipping those already reconciled that day in
// that mode or a stronger one. A connector that fails does not stop the
// others: its error is logged and kept. done hears of each kept
// reconciliation.
func Nightly(ctx context.Context, iys IYS, st Recorder, cs []consent.ConnectorRef, day Day, mode Mode, log *zap.Logger,
	done func(brandCode string, row store.Reconcile)) {
	if mode == ModeOff {
		return
	}
	if log == nil {
		log = zap.NewNop()
	}
	for _, c := range cs {
		if err := ctx.Err(); err != nil {
			// Kept and counted as failed: the day goes unreconciled.
			err = fmt.Errorf("not reconciled: the night's window ended, or serve stopped, first (%w)", err)
			row := keep(ctx, st, rowOf(c, mode == ModeRepair, store.ReconcileBySchedule, nil, err), c, day, log)
			log.Error("nightly reconciliation failed", zap.String("brand_code", c.BrandCode), zap.Stringer("day", day), zap.Error(err))
			if done != nil {
				done(c.BrandCode, row)
			}
			continue
		}
		last, ok, err := st.LastReconcile(ctx, c.ID)
		if err != nil {
			log.Error("nightly reconciliation skipped: cannot read the last one", zap.String("brand_code", c.BrandCode), zap.Error(err))
			continue
		}
		if ok && last.DayString() == day.String() && last.Result == store.ReconcileDone &&
			(last.Mode == string(ModeRepair) || mode == ModeReport) {
			continue
		}
		rep, row, err := RunRecorded(ctx, iys, st, c, day, mode == ModeRepair, store.ReconcileBySchedule, log)
		switch {
		case NoRight(err):
			log.Warn("nightly reconciliation skipped: İYS refuses this brand's daily files (no Mutabakat Yönetimi right)",
				zap.String("brand_code", c.BrandCode), zap.Stringer("day", day))
		case err != nil:
			log.Error("nightly reconciliation failed", zap.String("brand_code", c.BrandCode), zap.Stringer("day", day), zap.Error(err))
		default:
			logDrift(log, rep)
			log.Info("nightly reconciliation done", zap.String("brand_code", c.BrandCode), zap.Stringer("day", day),
				zap.String("mode", string(mode)), zap.Int("drift", rep.Drift()),
				zap.Int("repaired", row.Repaired), zap.Int("unrepaired", row.Unrepaired),
				zap.Int("summary_mismatches", row.SummaryMismatches))
		}
		if done != nil {
			done(c.BrandCode, row)
		}
	}
}
