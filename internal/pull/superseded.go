package pull

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/store"
)

// StatusSource answers single-consent status queries.
type StatusSource interface {
	ConsentStatus(ctx context.Context, iysCode, brandCode string, q iysclient.StatusQuery) (*iysclient.Record, error)
}

// DefaultStatusRate paces status queries: İYS allows about 100 an hour per
// IP [seen], and the rest of the process may need some.
var DefaultStatusRate = rate.Every(45 * time.Second)

// Refresher brings superseded records to what İYS holds, one status query
// each, paced. It never waits for the pace: a run refreshes what the
// limiter allows now and leaves the rest to later runs, so the push is
// never held up.
type Refresher struct {
	st      *store.Store
	iys     StatusSource
	log     *zap.Logger
	limiter *rate.Limiter
}

// NewRefresher makes a Refresher; limiter nil means DefaultStatusRate with
// a burst of 5.
func NewRefresher(st *store.Store, iys StatusSource, log *zap.Logger, limiter *rate.Limiter) *Refresher {
	if log == nil {
		log = zap.NewNop()
	}
	if limiter == nil {
		limiter = rate.NewLimiter(DefaultStatusRate, 5)
	}
	return &Refresher{st: st, iys: iys, log: log, limiter: limiter}
}

// Refresh refreshes superseded records of the connector while the limiter
// allows, and reports how many it brought to İYS's state.
func (r *Refresher) Refresh(ctx context.Context, c consent.ConnectorRef) (int, error) {
	n := int(r.limiter.Tokens())
	if n <= 0 {
		return 0, nil
	}
	recs, err := r.st.SupersededRecords(ctx, c.ID, n)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, rec := range recs {
		if !r.limiter.Allow() {
			break
		}
		held, err := r.iys.ConsentStatus(ctx, c.IYSCode, c.BrandCode, iysclient.StatusQuery{
			Recipient: rec.Recipient, RecipientType: rec.RecipientType, Type: rec.Type})
		if errors.Is(err, iysclient.ErrNoRecord) {
			// İYS no longer holds what beat ours: leave the record for a
			// person to read (report --outcome superseded).
			r.log.Warn("a superseded record has no record at İYS", zap.String("brand_code", c.BrandCode),
				zap.String("recipient", consent.MaskRecipient(rec.Recipient)), zap.String("type", string(rec.Type)))
			continue
		}
		if err != nil {
			return done, fmt.Errorf("refresh superseded records of %s: %w", c.BrandCode, err)
		}
		ok, err := r.st.ReplaceFromIYS(ctx, rec.ID, rec.Version, store.Change{Recipient: rec.Recipient,
			RecipientType: rec.RecipientType, Type: rec.Type, Status: held.Status, ConsentDate: held.ConsentDate,
			Source: held.Source, TransactionID: held.TransactionID})
		if err != nil {
			return done, err
		}
		if ok {
			done++
		}
	}
	if done > 0 {
		r.log.Info("refreshed superseded records from İYS", zap.String("brand_code", c.BrandCode), zap.Int("records", done))
	}
	return done, nil
}
