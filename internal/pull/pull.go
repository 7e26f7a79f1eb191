// Package pull brings İYS's side back into our records: the changes feed of
// each connector, citizens' changes (source=IYS) and the brand's own
// (source=HS), page after page from the stored cursor, applied newest-wins.
package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
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

// DefaultMaxPages bounds one pull of one source, so that a feed that never
// ends (a bug at either end) cannot hold the run: 10,000 pages are a
// million changes even when İYS answers 100 a page. What was read is
// stored; the next pull goes on from there.
const DefaultMaxPages = 10000

// ErrCursorRejected is in a pull's error when İYS refused the stored cursor
// (a 4xx to the changes call that sent it): every later pull would be
// refused the same way until the cursor is reset.
var ErrCursorRejected = errors.New("İYS refused the stored changes-feed cursor")

// sources are pulled in this order: citizens' changes first, the reason the
// pull exists.
var sources = []iysclient.ChangeSource{iysclient.ChangesByCitizens, iysclient.ChangesByBrand}

// Puller pulls connectors' changes.
type Puller struct {
	st   *store.Store
	feed Feed
	log  *zap.Logger
	// Pulled, when set, hears of each pull that reached the end of both
	// sources, for the watchdog's metric.
	Pulled func(brandCode string, at time.Time)
	// Quarantined, when set, hears of the entries each stored page kept in
	// quarantine, for metrics.
	Quarantined func(brandCode string, n int)
	// PageSize is the changes asked for per page (DefaultPageSize).
	PageSize int
	// MaxPages bounds the pages of one source in one pull (DefaultMaxPages).
	MaxPages int
	// Refresher, when set, refreshes superseded records after each pull.
	Refresher *Refresher
}

// New makes a Puller.
func New(st *store.Store, feed Feed, log *zap.Logger) *Puller {
	if log == nil {
		log = zap.NewNop()
	}
	return &Puller{st: st, feed: feed, log: log, PageSize: DefaultPageSize, MaxPages: DefaultMaxPages}
}

// Result counts what one pull did.
type Result struct {
	Pages       int
	Changes     int // entries read from the feed
	Applied     int // records they changed (newer than ours)
	Quarantined int // entries that could not be read, kept in quarantine
}

// Pull is the engine's hook: it pulls the connector before its push, and
// says loudly when the last pull that reached the feed's end is so old that
// changes may be lost.
func (p *Puller) Pull(ctx context.Context, c consent.ConnectorRef, runID int64) error {
	cursors, err := p.st.PullCursors(ctx, c.ID)
	if err != nil {
		return err
	}
	if last := store.PullCompleteAt(cursors); !last.IsZero() {
		lag, level := Lag(last, time.Time{}, time.Now())
		switch level {
		case LagLost:
			p.log.Error(LagMessage(level), zap.String("brand_code", c.BrandCode), zap.Duration("lag", lag))
		case LagWarning:
			p.log.Warn(LagMessage(level), zap.String("brand_code", c.BrandCode), zap.Duration("lag", lag))
		}
	}
	if _, err := p.pullFrom(ctx, c, cursors); err != nil {
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
	cursors, err := p.st.PullCursors(ctx, c.ID)
	if err != nil {
		return Result{}, err
	}
	return p.pullFrom(ctx, c, cursors)
}

// pullFrom is PullConnector from the cursors read.
func (p *Puller) pullFrom(ctx context.Context, c consent.ConnectorRef, cursors map[string]store.PullCursor) (Result, error) {
	var res Result
	for _, src := range sources {
		if err := p.pullSource(ctx, c, src, cursors[string(src)].After, &res); err != nil {
			return res, err
		}
	}
	p.log.Info("pulled İYS changes", zap.String("brand_code", c.BrandCode), zap.Int("pages", res.Pages),
		zap.Int("changes", res.Changes), zap.Int("applied", res.Applied), zap.Int("quarantined", res.Quarantined))
	if p.Pulled != nil {
		p.Pulled(c.BrandCode, time.Now())
	}
	return res, nil
}

// pullSource follows one source of the feed from cursor after to its end:
// a page with no entries, or one whose cursor is missing or did not move.
// A page shorter than the limit is not the end: İYS may cap its pages.
// Each page is stored with its cursor, and the last with the time the feed's
// end was reached.
func (p *Puller) pullSource(ctx context.Context, c consent.ConnectorRef, src iysclient.ChangeSource, after string, res *Result) error {
	maxPages := p.MaxPages
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	for pages := 0; ; pages++ {
		if pages == maxPages {
			return fmt.Errorf("pull %s (%s): the feed did not end after %d pages (%d changes in this pull): "+
				"stopped so that the run goes on; what was read is stored and the next pull goes on from there",
				c.BrandCode, src, maxPages, res.Changes)
		}
		pg, err := p.feed.Changes(ctx, c.IYSCode, c.BrandCode, iysclient.ChangesQuery{Source: src, After: after, Limit: p.PageSize})
		if err != nil {
			return feedError(c, src, after, err)
		}
		page := store.FeedPage{Source: string(src), After: pg.After,
			End: len(pg.Entries) == 0 || pg.After == "" || pg.After == after}
		page.Changes, page.Quarantined = p.read(c, src, pg.Entries)
		applied, err := p.st.ApplyChanges(ctx, c.ID, page)
		if err != nil {
			return fmt.Errorf("pull %s (%s): %w", c.BrandCode, src, err)
		}
		res.Pages++
		res.Changes += len(pg.Entries)
		res.Applied += applied
		res.Quarantined += len(page.Quarantined)
		if n := len(page.Quarantined); n > 0 && p.Quarantined != nil {
			p.Quarantined(c.BrandCode, n)
		}
		if page.End {
			return nil
		}
		after = pg.After
	}
}

// feedError wraps a failed page; a refusal of the cursor we sent says how
// to get out of it, as every later pull would fail the same way.
func feedError(c consent.ConnectorRef, src iysclient.ChangeSource, after string, err error) error {
	var apiErr *iysclient.APIError
	if after != "" && errors.As(err, &apiErr) && cursorRefusal(apiErr.Status) {
		return fmt.Errorf("pull %s (%s): %w: %w; every later pull would be refused the same way: "+
			"start again from the beginning of the 7 days İYS keeps with: iys-sync pull --brand-code %s --reset-cursor",
			c.BrandCode, src, ErrCursorRejected, err, c.BrandCode)
	}
	return fmt.Errorf("pull %s (%s): %w", c.BrandCode, src, err)
}

// cursorRefusal tells a 4xx that may be about the cursor from those that
// are not: an expired token (401), missing rights (403), a timeout (408)
// and throttling (429).
func cursorRefusal(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status < 500
}

// read reads a page's entries one by one: those it can into changes of our
// records, the others into quarantine with their reasons, logged without
// personal data.
func (p *Puller) read(c consent.ConnectorRef, src iysclient.ChangeSource, entries []json.RawMessage) ([]store.Change, []store.Quarantined) {
	changes := make([]store.Change, 0, len(entries))
	var held []store.Quarantined
	for _, raw := range entries {
		ch, err := readEntry(raw)
		if err != nil {
			held = append(held, store.Quarantined{Raw: raw, Reason: err.Error()})
			continue
		}
		changes = append(changes, ch)
	}
	if len(held) > 0 {
		p.log.Warn("kept İYS changes we cannot read in quarantine (table pull_quarantine)",
			zap.String("brand_code", c.BrandCode), zap.String("source", string(src)), zap.Int("entries", len(held)),
			zap.Strings("reasons", reasons(held)))
	}
	return changes, held
}

// maxReasons bounds the distinct reasons one log line names.
const maxReasons = 5

// reasons are the distinct reasons of held entries, in order, at most maxReasons.
func reasons(held []store.Quarantined) []string {
	var out []string
	for _, q := range held {
		if len(out) == maxReasons {
			break
		}
		if !slices.Contains(out, q.Reason) {
			out = append(out, q.Reason)
		}
	}
	return out
}
