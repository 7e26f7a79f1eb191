// Package pull brings İYS's side back into our records: the changes feed of
// each connector, citizens' changes (source=IYS) and the brand's own
// (source=HS), page after page from the stored cursor, applied newest-wins.
package pull

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/store"
)

// Feed is the changes feed of İYS.
type Feed interface {
	Changes(ctx context.Context, iysCode, brandCode string, q iysclient.ChangesQuery) (*iysclient.ChangesPage, error)
}

// DefaultPageSize is the changes asked for per page: İYS's largest.
const DefaultPageSize = 1000

// maxPages bounds one pull, so that a feed that never ends (a bug at either
// end) cannot hold the run: 1000 pages are a million changes.
const maxPages = 1000

// sources are pulled in this order: citizens' changes first, the reason the
// pull exists.
var sources = []iysclient.ChangeSource{iysclient.ChangesByCitizens, iysclient.ChangesByBrand}

// Puller pulls connectors' changes.
type Puller struct {
	st   *store.Store
	feed Feed
	log  *zap.Logger
	// Pulled, when set, hears of each successful pull, for metrics.
	Pulled func(brandCode string, at time.Time)
	// PageSize is the changes asked for per page (DefaultPageSize).
	PageSize int
	// Refresher, when set, refreshes superseded records after each pull.
	Refresher *Refresher
}

// New makes a Puller.
func New(st *store.Store, feed Feed, log *zap.Logger) *Puller {
	if log == nil {
		log = zap.NewNop()
	}
	return &Puller{st: st, feed: feed, log: log, PageSize: DefaultPageSize}
}

// Result counts what one pull did.
type Result struct {
	Pages   int
	Changes int // entries read from the feed
	Applied int // records they changed (newer than ours)
	Skipped int // entries whose recipient we cannot read (logged, masked)
}

// Pull is the engine's hook: it pulls the connector before its push, and
// says loudly when the last pull is so old that changes may be lost.
func (p *Puller) Pull(ctx context.Context, c consent.ConnectorRef, runID int64) error {
	if cur, err := p.st.PullCursors(ctx, c.ID); err == nil {
		if last := cur[string(iysclient.ChangesByCitizens)].PulledAt; !last.IsZero() {
			lag, level := Lag(last, time.Time{}, time.Now())
			switch level {
			case LagLost:
				p.log.Error(LagMessage(level), zap.String("brand_code", c.BrandCode), zap.Duration("lag", lag))
			case LagWarning:
				p.log.Warn(LagMessage(level), zap.String("brand_code", c.BrandCode), zap.Duration("lag", lag))
			}
		}
	}
	if _, err := p.PullConnector(ctx, c); err != nil {
		return err
	}
	if p.Refresher != nil {
		if _, err := p.Refresher.Refresh(ctx, c); err != nil {
			// The push need not wait for it: the next run tries again.
			p.log.Warn("superseded records not refreshed", zap.String("brand_code", c.BrandCode), zap.Error(err))
		}
	}
	return nil
}

// PullConnector pulls both sources of one connector to their ends.
func (p *Puller) PullConnector(ctx context.Context, c consent.ConnectorRef) (Result, error) {
	var res Result
	cursors, err := p.st.PullCursors(ctx, c.ID)
	if err != nil {
		return res, err
	}
	for _, src := range sources {
		after := cursors[string(src)].After
		for page := 0; ; page++ {
			if page == maxPages {
				return res, fmt.Errorf("pull %s: the %s feed did not end after %d pages", c.BrandCode, src, maxPages)
			}
			pg, err := p.feed.Changes(ctx, c.IYSCode, c.BrandCode, iysclient.ChangesQuery{Source: src, After: after, Limit: p.PageSize})
			if err != nil {
				return res, fmt.Errorf("pull %s (%s): %w", c.BrandCode, src, err)
			}
			changes := p.changes(c, pg.List, &res)
			applied, err := p.st.ApplyChanges(ctx, c.ID, string(src), pg.After, changes)
			if err != nil {
				return res, fmt.Errorf("pull %s (%s): %w", c.BrandCode, src, err)
			}
			res.Pages++
			res.Changes += len(pg.List)
			res.Applied += applied
			if pg.After != "" {
				after = pg.After
			}
			if len(pg.List) < p.PageSize {
				break
			}
		}
	}
	p.log.Info("pulled İYS changes", zap.String("brand_code", c.BrandCode), zap.Int("pages", res.Pages),
		zap.Int("changes", res.Changes), zap.Int("applied", res.Applied), zap.Int("skipped", res.Skipped))
	if p.Pulled != nil {
		p.Pulled(c.BrandCode, time.Now())
	}
	return res, nil
}

// changes normalises the feed's recipients to our keys; an entry we cannot
// read is logged (masked) and skipped rather than stopping the pull.
func (p *Puller) changes(c consent.ConnectorRef, list []iysclient.Record, res *Result) []store.Change {
	out := make([]store.Change, 0, len(list))
	for _, r := range list {
		rec, err := consent.NormalizeRecipient(r.Type, r.Recipient)
		if err == nil {
			err = known(r)
		}
		if err != nil || r.ConsentDate.IsZero() {
			res.Skipped++
			p.log.Warn("skipped an İYS change we cannot read", zap.String("brand_code", c.BrandCode),
				zap.String("recipient", consent.MaskRecipient(r.Recipient)), zap.String("type", string(r.Type)))
			continue
		}
		out = append(out, store.Change{Recipient: rec, RecipientType: r.RecipientType, Type: r.Type, Status: r.Status,
			ConsentDate: r.ConsentDate, Source: r.Source, TransactionID: r.TransactionID})
	}
	return out
}

// known checks the values our records hold; İYS's sources are accepted
// whatever they are (new citizen channels appear).
func known(r iysclient.Record) error {
	if _, err := consent.ParseType(string(r.Type)); err != nil {
		return err
	}
	if _, err := consent.ParseStatus(string(r.Status)); err != nil {
		return err
	}
	if _, err := consent.ParseRecipientType(string(r.RecipientType)); err != nil {
		return err
	}
	if r.Source == "" {
		return fmt.Errorf("no source")
	}
	return nil
}
