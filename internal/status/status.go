// Package status assembles what the status command shows of each
// connector: its records by state and outcome, its last run, its pull from
// İYS, the records at risk of İYS's 3-business-day limit and its last
// reconciliation with İYS's daily files.
package status

import (
	"context"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/pull"
	"github.com/iys-sync/iys-sync/internal/reconcile"
	"github.com/iys-sync/iys-sync/internal/store"
)

// Report is status --json of docs/cli.md.
type Report struct {
	Connectors []Connector `json:"connectors"`
}

// Connector is one connector's status. LastRun and Pull are null until the
// connector has had a run or a pull.
type Connector struct {
	BrandCode   string   `json:"brandCode"`
	IYSCode     string   `json:"iysCode"`
	State       string   `json:"state"`
	InstalledAt string   `json:"installedAt"`
	FirstSyncAt string   `json:"firstSyncAt"`
	Records     Records  `json:"records"`
	Outcomes    Outcomes `json:"outcomes"`
	LastRun     *LastRun `json:"lastRun"`
	Pull        *Pull    `json:"pull"`
	Deadline    Deadline `json:"deadline"`
	// LastReconcile is null until the connector's first reconciliation.
	LastReconcile *LastReconcile `json:"lastReconcile"`
	// Webhook is where the webhooks' delivery stands; nil until they
	// looked at the connector.
	Webhook *Webhook `json:"webhook"`
}

// LastReconcile is the connector's last reconciliation of a day with
// İYS's daily files, by serve at night or by the reconcile command.
type LastReconcile struct {
	Day               string         `json:"day"`
	Mode              string         `json:"mode"`    // report, repair
	Trigger           string         `json:"trigger"` // schedule, command
	Result            string         `json:"result"`  // done, failed, no_right
	Drift             map[string]int `json:"drift"`   // by drifting kind
	NotDrift          map[string]int `json:"notDrift"`
	SummaryMismatches int            `json:"summaryMismatches"`
	Repaired          int            `json:"repaired"`
	Unrepaired        int            `json:"unrepaired"`
	At                string         `json:"at"`
	Error             string         `json:"error,omitempty"`
}

// Webhook is where a connector's webhook delivery (IYS_WEBHOOK_URL) stands.
type Webhook struct {
	DeliveredAt         string `json:"deliveredAt"` // the last 2xx; "" none yet
	Undelivered         int64  `json:"undelivered"`
	OldestUndeliveredAt string `json:"oldestUndeliveredAt"` // "" when none waits
	Attempts            int    `json:"attempts"`            // failed tries since the last 2xx
	LastError           string `json:"lastError,omitempty"`
	NextAttemptAt       string `json:"nextAttemptAt"`
}

// Records counts the connector's records by state.
type Records struct {
	Pending  int `json:"pending"`
	InFlight int `json:"inFlight"`
	Synced   int `json:"synced"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
	// NotYetDue counts the pending records a run would not send yet: dated
	// ahead of the clock (they wait for their time), or waiting for a retry.
	NotYetDue int `json:"notYetDue"`
}

// Outcomes counts the records by outcome, in docs/cli.md's order, which a
// map would lose.
type Outcomes struct {
	Accepted      int `json:"accepted"`
	AlreadyInIYS  int `json:"already_in_iys"`
	NoPriorRecord int `json:"no_prior_record"`
	Superseded    int `json:"superseded"`
	TooOld        int `json:"too_old"`
	Invalid       int `json:"invalid"`
	Unknown       int `json:"unknown"`
	FromIYS       int `json:"from_iys"`
}

// LastRun is the connector's last finished run; a run still going is not
// "last" yet.
type LastRun struct {
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

// Pull is the connector's pull from İYS; LastPulledAt is when a pull last
// reached the end of both sides of the feed, the time the lag watchdog
// guards (a pull that failed on the way does not count).
type Pull struct {
	LastPulledAt string `json:"lastPulledAt"`
	Applied      int64  `json:"applied"`
	LagSeconds   int64  `json:"lagSeconds"`
	Warning      string `json:"warning,omitempty"` // over 5 days: soon lost; over 7: lost
	Quarantined  int    `json:"quarantined"`       // feed entries that could not be read, held in pull_quarantine
}

// Deadline is İYS's 3-business-day rule seen from the pending records:
// those already too old to be recorded, and those that will be by the next
// scheduled run, unless a run-now sends them first.
type Deadline struct {
	NextRunAt string `json:"nextRunAt"`
	AtRisk    int    `json:"atRisk"`
	TooOld    int    `json:"tooOld"`
}

// Of assembles the status of connectors cs at now, nextRun being when the
// schedule next fires.
func Of(ctx context.Context, st *store.Store, cs []store.Connector, now, nextRun time.Time) (Report, error) {
	out := Report{Connectors: []Connector{}}
	for _, c := range cs {
		s, err := connector(ctx, st, c, now, nextRun)
		if err != nil {
			return Report{}, err
		}
		out.Connectors = append(out.Connectors, s)
	}
	return out, nil
}

func connector(ctx context.Context, st *store.Store, c store.Connector, now, nextRun time.Time) (Connector, error) {
	s := Connector{BrandCode: c.BrandCode, IYSCode: c.IYSCode, State: c.State,
		InstalledAt: RFC3339(c.InstalledAt), FirstSyncAt: RFC3339(c.FirstSyncAt)}
	states, outcomes, err := st.Counts(ctx, c.ID)
	if err != nil {
		return s, err
	}
	s.Records = Records{Pending: states[consent.StatePending], InFlight: states[consent.StateInFlight],
		Synced: states[consent.StateSynced], Rejected: states[consent.StateRejected], Failed: states[consent.StateFailed]}
	s.Outcomes = Outcomes{Accepted: outcomes[consent.OutcomeAccepted], AlreadyInIYS: outcomes[consent.OutcomeAlreadyInIYS],
		NoPriorRecord: outcomes[consent.OutcomeNoPriorRecord], Superseded: outcomes[consent.OutcomeSuperseded],
		TooOld: outcomes[consent.OutcomeTooOld], Invalid: outcomes[consent.OutcomeInvalid],
		Unknown: outcomes[consent.OutcomeUnknown], FromIYS: outcomes[consent.OutcomeFromIYS]}
	if s.Records.NotYetDue, err = st.NotYetDue(ctx, c.ID, now); err != nil {
		return s, err
	}
	run, ok, err := st.LastFinishedRun(ctx, c.ID)
	if err != nil {
		return s, err
	}
	if ok {
		s.LastRun = &LastRun{Trigger: string(run.Trigger), StartedAt: RFC3339(run.StartedAt),
			FinishedAt: RFC3339(run.FinishedAt.Time), Sent: run.Sent, Accepted: run.Accepted, Rejected: run.Rejected,
			Retried: run.Retried, Failed: run.Failed, Status: string(run.Status), Error: run.Error.String}
	}
	cur, err := st.PullCursors(ctx, c.ID)
	if err != nil {
		return s, err
	}
	complete := store.PullCompleteAt(cur)
	lag, level := pull.Lag(complete, c.InstalledAt, now)
	s.Pull = &Pull{LastPulledAt: RFC3339(complete), Applied: cur["IYS"].Applied + cur["HS"].Applied,
		LagSeconds: int64(lag.Seconds()), Warning: pull.LagMessage(level)}
	if s.Pull.Quarantined, err = st.QuarantinedChanges(ctx, c.ID); err != nil {
		return s, err
	}
	if s.Deadline, err = DeadlineOf(ctx, st, c.ID, now, nextRun); err != nil {
		return s, err
	}
	w, ok, err := st.WebhookState(ctx, c.ID)
	if err != nil {
		return s, err
	}
	if ok {
		s.Webhook = &Webhook{DeliveredAt: RFC3339(w.DeliveredAt), Undelivered: w.Undelivered,
			OldestUndeliveredAt: RFC3339(w.OldestAt), Attempts: w.Attempts, LastError: w.LastError,
			NextAttemptAt: RFC3339(w.NextAttemptAt)}
	}
	r, ok, err := st.LastReconcile(ctx, c.ID)
	if ok {
		s.LastReconcile = &LastReconcile{Day: r.DayString(), Mode: r.Mode, Trigger: r.Trigger, Result: r.Result,
			Drift: map[string]int{string(reconcile.MissingHere): r.MissingHere, string(reconcile.StatusDiffers): r.StatusDiffers,
				string(reconcile.OnlyHereSynced): r.OnlyHereSynced},
			NotDrift: map[string]int{string(reconcile.OursNewerUnsent): r.OursNewerUnsent,
				string(reconcile.OursNewerRejected): r.OursNewerRejected},
			SummaryMismatches: r.SummaryMismatches, Repaired: r.Repaired, Unrepaired: r.Unrepaired,
			At: RFC3339(r.FinishedAt), Error: r.Error.String}
	}
	return s, err
}

// DeadlineOf counts the pending records over İYS's limit now, and those
// that will be by the next run.
func DeadlineOf(ctx context.Context, st *store.Store, connectorID int64, now, nextRun time.Time) (Deadline, error) {
	tooOld, err := st.PendingGivenBefore(ctx, connectorID, consent.OldestAcceptable(consent.NewDate(now)).Time())
	if err != nil {
		return Deadline{}, err
	}
	byNext, err := st.PendingGivenBefore(ctx, connectorID, consent.OldestAcceptable(consent.NewDate(nextRun)).Time())
	if err != nil {
		return Deadline{}, err
	}
	return Deadline{NextRunAt: RFC3339(nextRun), AtRisk: byNext - tooOld, TooOld: tooOld}, nil
}

// RFC3339 is a time as the JSON outputs write it; the zero time is "".
func RFC3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}
