package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/redact"
	"github.com/iys-sync/iys-sync/internal/status"
	"github.com/iys-sync/iys-sync/internal/store"
)

// The operators' levers: redrive, pause, resume, uninstall, runs. The
// rules are the store's; these read flags and print.

// redriveJSON is redrive --json.
type redriveJSON struct {
	BrandCode string         `json:"brandCode"`
	Matched   int            `json:"matched"`
	Requeued  int            `json:"requeued"` // 0 with --dry-run
	ByOutcome map[string]int `json:"byOutcome"`
}

func runRedrive(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "redrive")
	cf := settingFlags(fs, config.Database, config.Timezone, config.Operator)
	brand := fs.String("brand-code", "", "the connector's brand code")
	state := fs.String("state", "", "failed or rejected (default: both)")
	outcomes := fs.String("outcome", "", "rejected records of these outcomes only, comma-separated (default: every outcome)")
	since := fs.String("since", "", "records whose verdict was written on this day (YYYY-MM-DD, in IYS_TIMEZONE) or later (default: any day)")
	dryRun := fs.Bool("dry-run", false, "count the records a redrive would take, change nothing")
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	var f store.RedriveFilter
	switch *state {
	case "":
	case string(consent.StateFailed), string(consent.StateRejected):
		f.States = []consent.State{consent.State(*state)}
	default:
		return usagef("--state must be failed or rejected, got %q", *state)
	}
	if *outcomes != "" {
		if *state == string(consent.StateFailed) {
			return usagef("--outcome selects rejected records: it does not go with --state failed")
		}
		for _, o := range strings.Split(*outcomes, ",") {
			f.Outcomes = append(f.Outcomes, consent.Outcome(strings.TrimSpace(o)))
		}
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return err
	}
	if *since != "" {
		day, err := time.ParseInLocation(time.DateOnly, *since, cfg.Location())
		if err != nil {
			return usagef("--since must be a day as YYYY-MM-DD, got %q", *since)
		}
		f.Since = day
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.Connector(ctx, *brand)
	if err != nil {
		return err
	}
	res, err := st.Redrive(ctx, c.ID, f, operator(cfg, e.getenv), *dryRun)
	if err != nil {
		var bad *store.FilterError
		if errors.As(err, &bad) {
			return usagef("%v", bad)
		}
		return err
	}
	requeued := res.Matched
	if *dryRun {
		requeued = 0
	}
	if *jsonOut {
		return json.NewEncoder(e.stdout).Encode(redriveJSON{BrandCode: c.BrandCode, Matched: res.Matched, Requeued: requeued, ByOutcome: res.ByOutcome})
	}
	printRedrive(e.stdout, c.BrandCode, res, *dryRun)
	return nil
}

// operator is who redrives: IYS_OPERATOR, else the login name.
func operator(cfg config.Config, getenv func(string) string) string {
	for _, who := range []string{cfg.Operator, getenv("USER")} {
		if who = strings.TrimSpace(who); who != "" {
			return who
		}
	}
	return "unknown"
}

func printRedrive(w io.Writer, brand string, res store.Redriven, dryRun bool) {
	verb := "back to pending: the next run sends them"
	if dryRun {
		verb = "would go back to pending (--dry-run: nothing changed)"
	}
	fmt.Fprintf(w, "%s: %s %s.\n", brand, plural(res.Matched, "record", "records"), verb)
	keys := make([]string, 0, len(res.ByOutcome))
	for k := range res.ByOutcome {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-16s %d\n", k, res.ByOutcome[k])
	}
}

func runPause(ctx context.Context, e *env, args []string) error {
	return setState(ctx, e, "pause", store.ConnectorPaused, args)
}

func runResume(ctx context.Context, e *env, args []string) error {
	return setState(ctx, e, "resume", store.ConnectorActive, args)
}

// setState is pause and resume.
func setState(ctx context.Context, e *env, name, state string, args []string) error {
	fs := newFlagSet(e, name)
	cf := settingFlags(fs, config.Database)
	brand := fs.String("brand-code", "", "the connector's brand code")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	_, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	was, err := st.SetConnectorState(ctx, *brand, state)
	if err != nil {
		return err
	}
	switch {
	case was == state:
		fmt.Fprintf(e.stdout, "connector %s is already %s: nothing changed.\n", *brand, state)
	case state == store.ConnectorPaused:
		fmt.Fprintf(e.stdout, "connector %s paused: runs skip it (a run going on now goes to its end); imports, intake and "+
			"source reads still take records, which wait as pending. Resume it with: iys-sync resume --brand-code %s\n", *brand, *brand)
	default:
		fmt.Fprintf(e.stdout, "connector %s resumed: the next run sends what waits.\n", *brand)
	}
	return nil
}

func runUninstall(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "uninstall")
	cf := settingFlags(fs, config.Database)
	brand := fs.String("brand-code", "", "the connector's brand code")
	purge := fs.Bool("purge", false, "also delete the connector's records (needs --yes)")
	yes := fs.Bool("yes", false, "confirm --purge")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	if *purge && !*yes {
		return usagef("--purge deletes the connector's records for good: add --yes to confirm")
	}
	_, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.UninstallConnector(ctx, *brand, *purge)
	if err != nil {
		return err
	}
	if *purge {
		fmt.Fprintf(e.stdout, "connector %s uninstalled and %s deleted; its runs and imports are kept.\n", *brand,
			plural(res.Purged, "record", "records"))
	} else {
		fmt.Fprintf(e.stdout, "connector %s uninstalled: no longer served; its records and history are kept "+
			"(install it again to bring it back).\n", *brand)
	}
	return nil
}

// runJSON is one run of runs --json.
type runJSON struct {
	BrandCode  string            `json:"brandCode"`
	RunID      int64             `json:"runId"`
	Trigger    consent.Trigger   `json:"trigger"`
	StartedAt  string            `json:"startedAt"`
	FinishedAt string            `json:"finishedAt"` // "" while running
	Status     consent.RunStatus `json:"status"`
	Sent       int               `json:"sent"`
	Accepted   int               `json:"accepted"`
	Rejected   int               `json:"rejected"`
	Retried    int               `json:"retried"`
	Failed     int               `json:"failed"`
	Error      string            `json:"error"`
}

func runRuns(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "runs")
	cf := settingFlags(fs, config.Database, config.Timezone)
	brand := fs.String("brand-code", "", "only this connector's runs")
	limit := fs.Int("limit", 50, "at most this many runs, newest first")
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if *brand != "" {
		if err := checkCode("brand-code", *brand); err != nil {
			return err
		}
	}
	if *limit < 1 {
		return usagef("--limit must be 1 or more, got %d", *limit)
	}
	cfg, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.Runs(ctx, *brand, *limit)
	if err != nil {
		return err
	}
	if *jsonOut {
		out := struct {
			Runs []runJSON `json:"runs"`
		}{Runs: []runJSON{}}
		for _, r := range runs {
			out.Runs = append(out.Runs, runJSON{BrandCode: r.BrandCode, RunID: r.ID, Trigger: r.Trigger,
				StartedAt: status.RFC3339(r.StartedAt), FinishedAt: status.RFC3339(r.FinishedAt.Time), Status: r.Status,
				Sent: r.Sent, Accepted: r.Accepted, Rejected: r.Rejected, Retried: r.Retried, Failed: r.Failed,
				Error: redact.String(r.Error.String)})
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.stdout, "No runs yet.")
		return nil
	}
	local := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(cfg.Location()).Format("2006-01-02 15:04:05")
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRAND\tRUN\tTRIGGER\tSTARTED\tFINISHED\tSTATUS\tSENT\tACCEPTED\tREJECTED\tRETRIED\tFAILED\tERROR")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.BrandCode, r.ID, r.Trigger, local(r.StartedAt),
			local(r.FinishedAt.Time), r.Status, r.Sent, r.Accepted, r.Rejected, r.Retried, r.Failed, redact.String(r.Error.String))
	}
	return tw.Flush()
}
