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
	"github.com/iys-sync/iys-sync/internal/consent"
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
	st, client, err := openIYS(ctx, cfg, log, observe(m)...)
	if err != nil {
		return nil, err
	}
	puller := newPuller(st, client, log, m)
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
		Puller: source.Chain{puller, reader}, WhilePaused: reader, Transient: store.Transient}
	if m != nil {
		opts.Observer = m.Observer()
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

// openIYS opens the settings' database and makes their İYS client: what
// every command that talks to İYS starts with. The caller closes the store.
func openIYS(ctx context.Context, cfg config.Config, log *zap.Logger, opts ...iysclient.Option) (*store.Store, *iysclient.Client, error) {
	if err := cfg.Require(config.NeedDatabase, config.NeedIYS); err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	client, err := newIYSClient(cfg, st, log, opts...)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, client, nil
}

// newPuller is the pull of İYS's changes feed into st, with the refresh of
// superseded records to what İYS holds; m, when set, hears of its pulls.
func newPuller(st *store.Store, client *iysclient.Client, log *zap.Logger, m *metrics.Metrics) *pull.Puller {
	puller := pull.New(st, client, log)
	puller.Refresher = pull.NewRefresher(st, client, log, nil)
	if m != nil {
		puller.Pulled = m.Pull
		puller.Quarantined = m.PullQuarantined
	}
	return puller
}

// observe is the client option that tells m of every exchange with İYS;
// none when m is nil.
func observe(m *metrics.Metrics) []iysclient.Option {
	if m == nil {
		return nil
	}
	return []iysclient.Option{iysclient.WithObserver(m.Exchange)}
}

func (s *syncer) Close() error {
	if s.srcDB != nil {
		s.srcDB.Close()
	}
	return s.st.Close()
}

// runSummaryJSON is --run-now --json: a run's summary, camelCase as every
// JSON output. A count of records left that could not be read is null,
// never 0.
type runSummaryJSON struct {
	Connectors []runConnectorJSON `json:"connectors"`
	Pending    *int               `json:"pending"`
	Failed     int                `json:"failed"`
}

type runConnectorJSON struct {
	BrandCode string            `json:"brandCode"`
	RunID     int64             `json:"runId"`  // 0 when skipped
	Status    consent.RunStatus `json:"status"` // "" when skipped
	Sent      int               `json:"sent"`
	Accepted  int               `json:"accepted"`
	Rejected  int               `json:"rejected"`
	Retried   int               `json:"retried"`
	Failed    int               `json:"failed"`
	Pending   *int              `json:"pending"`
	Skipped   bool              `json:"skipped"`
	Paused    bool              `json:"paused"`
	Error     string            `json:"error"`
}

func newRunSummaryJSON(sum engine.Summary) runSummaryJSON {
	out := runSummaryJSON{Connectors: []runConnectorJSON{}, Pending: knownCount(sum.Pending), Failed: sum.Failed}
	for _, c := range sum.Connectors {
		out.Connectors = append(out.Connectors, runConnectorJSON{BrandCode: c.BrandCode, RunID: c.RunID, Status: c.Status,
			Sent: c.Sent, Accepted: c.Accepted, Rejected: c.Rejected, Retried: c.Retried, Failed: c.Failed,
			Pending: knownCount(c.Pending), Skipped: c.Skipped, Paused: c.Paused, Error: redact.String(c.Err)})
	}
	return out
}

// knownCount is a count of records left, nil when it could not be read.
func knownCount(n int) *int {
	if n == engine.PendingUnknown {
		return nil
	}
	return &n
}

// printRunSummary writes one line per connector of a run.
func printRunSummary(w io.Writer, sum engine.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRAND\tRUN\tSTATUS\tSENT\tACCEPTED\tREJECTED\tRETRIED\tFAILED\tLEFT")
	for _, c := range sum.Connectors {
		status := string(c.Status)
		switch {
		case c.Paused:
			status = "skipped (paused)"
		case c.Skipped:
			status = "skipped (running elsewhere)"
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
		case c.Paused: // an operator's choice, not work the run left
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
