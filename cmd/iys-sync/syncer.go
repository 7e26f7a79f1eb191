package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/redact"
	"github.com/iys-sync/iys-sync/internal/source"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
	"github.com/iys-sync/iys-sync/internal/sync/iysadapter"
)

// syncer is what --run-now, serve and demo share: the store, one İYS client
// (one token for the whole process) and the engine.
type syncer struct {
	st     *store.Store
	client *iysclient.Client
	eng    *engine.Engine
	puller *pull.Puller
	source *source.Reader
	srcDB  *source.DB // the brand's database (IYS_SOURCE_DATABASE_URL); nil when unset
}

func newSyncer(ctx context.Context, cfg config.Config, log *zap.Logger, m *metrics.Metrics) (*syncer, error) {
	if err := cfg.Require(config.NeedDatabase, config.NeedIYS); err != nil {
		return nil, err
	}
	var observe []iysclient.Option
	if m != nil {
		observe = append(observe, iysclient.WithObserver(m.Exchange))
	}
	client, err := newIYSClient(cfg, log, observe...)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	puller := pull.New(st, client, log)
	puller.Refresher = pull.NewRefresher(st, client, log, nil)
	// The brand's own database, read by connectors with a source query
	// before each push (after İYS's changes); unset, such a connector's run
	// reports that it cannot read its source, and pushes on.
	var srcDB *source.DB
	if cfg.SourceDatabaseURL != "" {
		if srcDB, err = source.Open(cfg.SourceDatabaseURL, cfg.SourceStatementTimeout); err != nil {
			st.Close()
			return nil, err
		}
	}
	reader := source.New(st, srcDB, log.Named("source"))
	opts := engine.Options{BatchSize: cfg.BatchSize, Concurrency: cfg.Concurrency, Logger: log,
		Puller: source.Chain{puller, reader}, Transient: store.Transient}
	if m != nil {
		opts.Observer = m.Observer()
		puller.Pulled = m.Pull
		puller.Quarantined = m.PullQuarantined
	}
	eng, err := engine.New(st, iysadapter.New(client), opts)
	if err != nil {
		st.Close()
		if srcDB != nil {
			srcDB.Close()
		}
		return nil, err
	}
	return &syncer{st: st, client: client, eng: eng, puller: puller, source: reader, srcDB: srcDB}, nil
}

func (s *syncer) Close() error {
	if s.srcDB != nil {
		s.srcDB.Close()
	}
	return s.st.Close()
}

// printRunSummary writes one line per connector of a run.
func printRunSummary(w io.Writer, sum engine.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRAND\tRUN\tSTATUS\tSENT\tACCEPTED\tREJECTED\tRETRIED\tFAILED\tLEFT")
	for _, c := range sum.Connectors {
		status := string(c.Status)
		if c.Skipped {
			status = "skipped (running elsewhere, or paused)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", c.BrandCode, c.RunID, status, c.Sent, c.Accepted, c.Rejected, c.Retried, c.Failed, pendingText(c.Pending))
	}
	tw.Flush()
	for _, c := range sum.Connectors {
		if c.Err != "" {
			fmt.Fprintf(w, "%s: %s\n", c.BrandCode, redact.String(c.Err))
		}
	}
}

// runOutcome maps a run's summary to docs/cli.md's exit: nil when nothing
// is left pending, a partialError (exit 3) when work remains.
func runOutcome(sum engine.Summary) error {
	var left []string
	for _, c := range sum.Connectors {
		switch {
		case c.Skipped:
			left = append(left, c.BrandCode+" was skipped")
		case c.Pending != 0 || c.Status != "completed":
			left = append(left, fmt.Sprintf("%s has %s records left (%s)", c.BrandCode, pendingText(c.Pending), c.Status))
		}
	}
	if len(left) == 0 && sum.Failed == 0 {
		return nil
	}
	if sum.Failed > 0 {
		left = append(left, fmt.Sprintf("%d records failed after their retry budget (see report --state failed)", sum.Failed))
	}
	return &partialError{msg: "work remains: " + strings.Join(left, "; ")}
}

// pendingText is a count of records left, or "unknown" when it could not be
// read: never a 0 that was not counted.
func pendingText(n int) string {
	if n == engine.PendingUnknown {
		return "unknown"
	}
	return strconv.Itoa(n)
}
