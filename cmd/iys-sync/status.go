package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/store"
)

// statusJSON is status --json of docs/cli.md. LastRun and Pull are null
// until the connector has had a run or a pull.
type statusJSON struct {
	Connectors []connectorStatus `json:"connectors"`
}

type connectorStatus struct {
	BrandCode   string        `json:"brandCode"`
	IYSCode     string        `json:"iysCode"`
	State       string        `json:"state"`
	InstalledAt string        `json:"installedAt"`
	FirstSyncAt string        `json:"firstSyncAt"`
	Records     recordCounts  `json:"records"`
	Outcomes    outcomeCounts `json:"outcomes"`
	LastRun     *lastRunJSON  `json:"lastRun"`
	Pull        *pullJSON     `json:"pull"`
	Deadline    deadlineJSON  `json:"deadline"`
}

// deadlineJSON is İYS's 3-business-day rule seen from the pending records:
// those already too old to be recorded, and those that will be by the next
// scheduled run, unless a run-now sends them first.
type deadlineJSON struct {
	NextRunAt string `json:"nextRunAt"`
	AtRisk    int    `json:"atRisk"`
	TooOld    int    `json:"tooOld"`
}

// pullJSON is the connector's pull from İYS; lastPulledAt is when a pull
// last reached the end of both sides of the feed, the time the lag watchdog
// guards (a pull that failed on the way does not count).
type pullJSON struct {
	LastPulledAt string `json:"lastPulledAt"`
	Applied      int64  `json:"applied"`
	LagSeconds   int64  `json:"lagSeconds"`
	Warning      string `json:"warning,omitempty"` // over 5 days: soon lost; over 7: lost
	Quarantined  int    `json:"quarantined"`       // feed entries that could not be read, held in pull_quarantine
}

// lastRunJSON is the connector's last finished run; a run still going is
// not "last" yet.
type lastRunJSON struct {
	Trigger    string `json:"trigger"`
	StartedAt  string `json:"startedAt"`
	FinishedAt string `json:"finishedAt"`
	Sent       int    `json:"sent"`
	Accepted   int    `json:"accepted"`
	Rejected   int    `json:"rejected"`
	Retried    int    `json:"retried"`
	Failed     int    `json:"failed"`
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
}

// outcomeCounts keeps docs/cli.md's order, which a map would lose.
type outcomeCounts struct {
	Accepted      int `json:"accepted"`
	AlreadyInIYS  int `json:"already_in_iys"`
	NoPriorRecord int `json:"no_prior_record"`
	Superseded    int `json:"superseded"`
	TooOld        int `json:"too_old"`
	Invalid       int `json:"invalid"`
	Unknown       int `json:"unknown"`
	FromIYS       int `json:"from_iys"`
}

type recordCounts struct {
	Pending  int `json:"pending"`
	InFlight int `json:"inFlight"`
	Synced   int `json:"synced"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
	// NotYetDue counts the pending records a run would not send yet: dated
	// ahead of the clock (they wait for their time), or waiting for a retry.
	NotYetDue int `json:"notYetDue"`
}

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "status")
	cf := config.RegisterFlags(fs)
	brand := fs.String("brand-code", "", "only this connector")
	jsonOut := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, st, err := loadAndOpen(ctx, e, cf)
	if err != nil {
		return err
	}
	defer st.Close()
	var cs []store.Connector
	if *brand != "" {
		c, err := st.Connector(ctx, *brand)
		if err != nil {
			return err
		}
		cs = []store.Connector{c}
	} else if cs, err = st.Connectors(ctx); err != nil {
		return err
	}
	out := statusJSON{Connectors: []connectorStatus{}}
	for _, c := range cs {
		states, outcomes, err := st.Counts(ctx, c.ID)
		if err != nil {
			return err
		}
		s := connectorStatus{
			BrandCode: c.BrandCode, IYSCode: c.IYSCode, State: c.State,
			InstalledAt: rfc3339(c.InstalledAt), FirstSyncAt: rfc3339(c.FirstSyncAt),
			Records: recordCounts{
				Pending: states[consent.StatePending], InFlight: states[consent.StateInFlight], Synced: states[consent.StateSynced],
				Rejected: states[consent.StateRejected], Failed: states[consent.StateFailed],
			},
			Outcomes: outcomeCounts{
				Accepted: outcomes[consent.OutcomeAccepted], AlreadyInIYS: outcomes[consent.OutcomeAlreadyInIYS],
				NoPriorRecord: outcomes[consent.OutcomeNoPriorRecord], Superseded: outcomes[consent.OutcomeSuperseded],
				TooOld: outcomes[consent.OutcomeTooOld], Invalid: outcomes[consent.OutcomeInvalid],
				Unknown: outcomes[consent.OutcomeUnknown], FromIYS: outcomes[consent.OutcomeFromIYS],
			},
		}
		if s.Records.NotYetDue, err = st.NotYetDue(ctx, c.ID, e.now()); err != nil {
			return err
		}
		run, ok, err := st.LastFinishedRun(ctx, c.ID)
		if err != nil {
			return err
		}
		if ok {
			s.LastRun = &lastRunJSON{Trigger: string(run.Trigger), StartedAt: rfc3339(run.StartedAt),
				FinishedAt: rfc3339(run.FinishedAt.Time), Sent: run.Sent, Accepted: run.Accepted, Rejected: run.Rejected,
				Retried: run.Retried, Failed: run.Failed, Status: string(run.Status), Error: run.Error.String}
		}
		cur, err := st.PullCursors(ctx, c.ID)
		if err != nil {
			return err
		}
		complete := store.PullCompleteAt(cur)
		lag, level := pull.Lag(complete, c.InstalledAt, e.now())
		s.Pull = &pullJSON{LastPulledAt: rfc3339(complete), Applied: cur["IYS"].Applied + cur["HS"].Applied,
			LagSeconds: int64(lag.Seconds()), Warning: pull.LagMessage(level)}
		if s.Pull.Quarantined, err = st.QuarantinedChanges(ctx, c.ID); err != nil {
			return err
		}
		if s.Deadline, err = connectorDeadline(ctx, st, cfg, c.ID, e.now()); err != nil {
			return err
		}
		out.Connectors = append(out.Connectors, s)
	}
	if *jsonOut {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if len(out.Connectors) == 0 {
		fmt.Fprintln(e.stdout, "No connectors. Install one with: iys-sync install --brand-code CODE --iys-code CODE")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRAND\tSTATE\tPENDING\tIN FLIGHT\tSYNCED\tREJECTED\tFAILED\tFIRST SYNC\tLAST RUN")
	for i, s := range out.Connectors {
		r := s.Records
		last := "none yet"
		if s.LastRun != nil {
			t, _ := time.Parse(time.RFC3339, s.LastRun.FinishedAt)
			last = fmt.Sprintf("%s %s (%s)", t.In(cfg.Location()).Format("2006-01-02 15:04"), s.LastRun.Status, s.LastRun.Trigger)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.BrandCode, s.State, r.Pending, r.InFlight, r.Synced, r.Rejected, r.Failed,
			cs[i].FirstSyncAt.In(cfg.Location()).Format("2006-01-02 15:04"), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range out.Connectors {
		if s.Pull.Warning != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", s.BrandCode, s.Pull.Warning)
		}
		if n := s.Pull.Quarantined; n > 0 {
			fmt.Fprintf(e.stdout, "%s: %s from İYS's feed could not be read: held in quarantine (table pull_quarantine, with the reasons)\n",
				s.BrandCode, plural(n, "change", "changes"))
		}
		if n := s.Records.NotYetDue; n > 0 {
			fmt.Fprintf(e.stdout, "%s: %d pending records are not yet due: dated ahead of the clock, or waiting for a retry\n",
				s.BrandCode, n)
		}
		if d := s.Deadline; d.AtRisk > 0 {
			fmt.Fprintf(e.stdout, "%s: %d pending records will be over İYS's 3-business-day limit by the next run (%s): run iys-sync --run-now\n",
				s.BrandCode, d.AtRisk, d.NextRunAt)
		}
		if d := s.Deadline; d.TooOld > 0 {
			fmt.Fprintf(e.stdout, "%s: %d pending records are already over the 3-business-day limit: İYS will refuse them unless it holds them\n",
				s.BrandCode, d.TooOld)
		}
	}
	return nil
}
