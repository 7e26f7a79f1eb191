package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/status"
	"github.com/iys-sync/iys-sync/internal/store"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "status")
	cf := settingFlags(fs, config.Database, config.Schedule, config.Timezone)
	brand := fs.String("brand-code", "", "only this connector")
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	cfg, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := connectorsOf(ctx, st, *brand)
	if err != nil {
		return err
	}
	now := e.now()
	out, err := status.Of(ctx, st, cs, now, nextScheduled(cfg, now))
	if err != nil {
		return err
	}
	if *jsonOut {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	return printStatus(e.stdout, out, cfg.Location())
}

// connectorsOf is the brand's connector, or every connector when brand is "".
func connectorsOf(ctx context.Context, st *store.Store, brand string) ([]store.Connector, error) {
	if brand == "" {
		return st.Connectors(ctx)
	}
	c, err := st.Connector(ctx, brand)
	if err != nil {
		return nil, err
	}
	return []store.Connector{c}, nil
}

// printStatus writes the status as a table, times in the schedule's zone,
// then each connector's warnings.
func printStatus(w io.Writer, out status.Report, loc *time.Location) error {
	if len(out.Connectors) == 0 {
		fmt.Fprintln(w, "No connectors. Install one with: iys-sync install --brand-code CODE --iys-code CODE")
		return nil
	}
	local := func(rfc3339 string) string {
		t, _ := time.Parse(time.RFC3339, rfc3339)
		return t.In(loc).Format("2006-01-02 15:04")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRAND\tSTATE\tPENDING\tIN FLIGHT\tSYNCED\tREJECTED\tFAILED\tFIRST SYNC\tLAST RUN")
	for _, s := range out.Connectors {
		r := s.Records
		last := "none yet"
		if s.LastRun != nil {
			last = fmt.Sprintf("%s %s (%s)", local(s.LastRun.FinishedAt), s.LastRun.Status, s.LastRun.Trigger)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.BrandCode, s.State, r.Pending, r.InFlight, r.Synced, r.Rejected, r.Failed,
			local(s.FirstSyncAt), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range out.Connectors {
		if s.Pull.Warning != "" {
			fmt.Fprintf(w, "%s: %s\n", s.BrandCode, s.Pull.Warning)
		}
		if n := s.Pull.Quarantined; n > 0 {
			fmt.Fprintf(w, "%s: %s from İYS's feed could not be read: held in quarantine (table pull_quarantine, with the reasons)\n",
				s.BrandCode, plural(n, "change", "changes"))
		}
		if n := s.Records.NotYetDue; n > 0 {
			fmt.Fprintf(w, "%s: %d pending records are not yet due: dated ahead of the clock, or waiting for a retry\n",
				s.BrandCode, n)
		}
		if d := s.Deadline; d.AtRisk > 0 {
			// A run skips a paused connector: only resuming it sends them.
			todo := "run iys-sync --run-now"
			if s.State == store.ConnectorPaused {
				todo = "the connector is paused: iys-sync resume --brand-code " + s.BrandCode + ", then iys-sync --run-now"
			}
			fmt.Fprintf(w, "%s: %d pending records will be over İYS's 3-business-day limit by the next run (%s): %s\n",
				s.BrandCode, d.AtRisk, d.NextRunAt, todo)
		}
		if d := s.Deadline; d.TooOld > 0 {
			fmt.Fprintf(w, "%s: %d pending records are already over the 3-business-day limit: İYS will refuse them unless it holds them\n",
				s.BrandCode, d.TooOld)
		}
		printLastReconcile(w, s.BrandCode, s.LastReconcile)
		if wh := s.Webhook; wh != nil && wh.Attempts > 0 {
			fmt.Fprintf(w, "%s: webhooks failing: %s, the last: %s; %s waiting, next try at %s\n", s.BrandCode,
				plural(wh.Attempts, "failed try", "failed tries"), wh.LastError, plural(int(wh.Undelivered), "change", "changes"), local(wh.NextAttemptAt))
		}
	}
	return nil
}

// printLastReconcile says what the connector's last reconciliation left to
// look at, if anything.
func printLastReconcile(w io.Writer, brand string, r *status.LastReconcile) {
	switch {
	case r == nil:
	case r.Result == store.ReconcileNoRight:
		fmt.Fprintf(w, "%s: İYS refused the daily files of %s: the brand has not granted reconciliation (Mutabakat Yönetimi)\n", brand, r.Day)
	case r.Result == store.ReconcileFailed:
		fmt.Fprintf(w, "%s: the reconciliation of %s failed: %s\n", brand, r.Day, r.Error)
	case r.Unrepaired > 0 || r.SummaryMismatches > 0:
		fmt.Fprintf(w, "%s: the reconciliation of %s (%s) left %s and %s: see iys-sync reconcile --brand-code %s --date %s\n",
			brand, r.Day, r.Mode, plural(r.Unrepaired, "drifting record", "drifting records"),
			plural(r.SummaryMismatches, "summary mismatch", "summary mismatches"), brand, r.Day)
	}
}
