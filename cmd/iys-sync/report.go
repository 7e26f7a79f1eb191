package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
)

// reportRow is one record of report: what the people who fix rejected
// records need. It is the operator's own export, so recipients are whole.
type reportRow struct {
	Recipient     string `json:"recipient"`
	RecipientType string `json:"recipientType"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	ConsentDate   string `json:"consentDate"`
	Source        string `json:"source"`
	ExternalID    string `json:"externalId"`
	State         string `json:"state"`
	Outcome       string `json:"outcome"`
	IYSCode       string `json:"iysCode"`
	IYSMessage    string `json:"iysMessage"`
	Attempts      int    `json:"attempts"`
	TransactionID string `json:"transactionId"` // İYS's, of the last verdict or change it holds
	Origin        string `json:"origin"`        // where the current value came from: file:NAME:LINE, ...
}

var reportHeader = []string{"recipient", "recipientType", "type", "status", "consentDate", "source", "externalId",
	"state", "outcome", "iysCode", "iysMessage", "attempts", "transactionId", "origin"}

// csvFields is the row as CSV cells. The free text that a brand or İYS
// writes (external id, İYS's code and message) is neutralised against
// formula injection; every other cell is ours and validated (a recipient is
// E.164, whose + a spreadsheet reads as a plain number, or an ASCII email
// without brackets or quotes, so no formula call), and stays as it is.
func (r reportRow) csvFields() []string {
	return []string{r.Recipient, r.RecipientType, r.Type, r.Status, r.ConsentDate, r.Source, csvText(r.ExternalID),
		r.State, r.Outcome, csvText(r.IYSCode), csvText(r.IYSMessage), strconv.Itoa(r.Attempts), csvText(r.TransactionID),
		csvText(r.Origin)}
}

// csvText keeps a spreadsheet from running a cell as a formula: a cell that
// starts with =, +, -, @, a tab or a carriage return gets a ' in front, as
// OWASP's "CSV Injection" advises.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func runReport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "report")
	cf := settingFlags(fs, config.Database)
	brand := fs.String("brand-code", "", "the connector's brand code")
	state := fs.String("state", "", "only records in this state: pending, in_flight, synced, rejected or failed")
	outcome := fs.String("outcome", "", "only records with this outcome (accepted, no_prior_record, ...)")
	format := fs.String("format", "csv", "csv or json")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	f := store.Filter{State: consent.State(*state), Outcome: consent.Outcome(*outcome)}
	if *state != "" && !slices.Contains(consent.States, f.State) {
		return usagef("--state %q: want pending, in_flight, synced, rejected or failed", *state)
	}
	if *outcome != "" && !slices.Contains(consent.Outcomes, f.Outcome) {
		return usagef("--outcome %q: want one of %v", *outcome, consent.Outcomes)
	}
	if *format != "csv" && *format != "json" {
		return usagef("--format %q: want csv or json", *format)
	}
	_, st, c, err := loadConnector(ctx, e, cf, *brand)
	if err != nil {
		return err
	}
	defer st.Close()
	return writeReport(ctx, e.stdout, st, c.ID, f, *format)
}

// writeReport streams the connector's records that pass f as CSV or JSON:
// a report of millions stays small.
func writeReport(ctx context.Context, out io.Writer, st *store.Store, connectorID int64, f store.Filter, format string) error {
	w := bufio.NewWriter(out)
	emit, finish, err := reportEncoder(w, format)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	err = st.ConsentsOf(ctx, connectorID, f, func(rec store.Record) error {
		return emit(reportRow{
			Recipient: rec.Recipient, RecipientType: string(rec.RecipientType), Type: string(rec.Type),
			Status: string(rec.Status), ConsentDate: rec.ConsentDate.String(), Source: string(rec.Source),
			ExternalID: rec.ExternalID, State: string(rec.State), Outcome: string(rec.Outcome.V),
			IYSCode: rec.IYSCode.String, IYSMessage: rec.IYSMessage.String, Attempts: rec.Attempts,
			TransactionID: rec.TransactionID.String, Origin: rec.Origin,
		})
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := finish(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return w.Flush()
}

// reportEncoder writes rows as CSV (a header first) or as a JSON array
// written as it goes; finish ends the output.
func reportEncoder(w io.Writer, format string) (emit func(reportRow) error, finish func() error, err error) {
	if format == "csv" {
		cw := csv.NewWriter(w)
		if err := cw.Write(reportHeader); err != nil {
			return nil, nil, err
		}
		return func(r reportRow) error { return cw.Write(r.csvFields()) }, func() error { cw.Flush(); return cw.Error() }, nil
	}
	n := 0
	fmt.Fprint(w, "[")
	emit = func(r reportRow) error {
		if n > 0 {
			fmt.Fprint(w, ",\n")
		}
		n++
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return emit, func() error { _, err := fmt.Fprintln(w, "]"); return err }, nil
}
