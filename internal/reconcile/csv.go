package reconcile

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
)

// CSVHeader is the header of the findings' CSV: one record a line, drift or not
// (the drift column tells).
var CSVHeader = []string{"kind", "drift", "recipient", "recipientType", "type",
	"ourStatus", "ourConsentDate", "ourSource", "ourState", "ourOutcome",
	"iysStatus", "iysConsentDate", "iysSource", "iysCreationDate", "iysTransactionId", "fileLine", "lookedUp"}

// csvFields is a finding as a CSV row: empty cells for the side that holds
// no record.
func (f Finding) csvFields() []string {
	row := []string{string(f.Kind), strconv.FormatBool(f.Kind.Drift()), f.Key.Recipient, string(f.Key.RecipientType), string(f.Key.Type),
		"", "", "", "", "", "", "", "", "", "", "", strconv.FormatBool(f.LookedUp)}
	if o := f.Ours; o != nil {
		row[5], row[6], row[7], row[8], row[9] = string(o.Status), o.ConsentDate.String(), string(o.Source), string(o.State), string(o.Outcome)
	}
	if h := f.IYS; h != nil {
		row[10], row[11], row[12], row[13], row[14] = string(h.Status), h.ConsentDate.String(), string(h.Source), h.CreationDate.String(), h.TransactionID
	}
	if f.Line > 0 {
		row[15] = strconv.Itoa(f.Line)
	}
	return row
}

// WriteCSV writes the findings as CSV, a header first.
func WriteCSV(w io.Writer, findings []Finding) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	for _, f := range findings {
		if err := cw.Write(f.csvFields()); err != nil {
			return fmt.Errorf("write findings: %w", err)
		}
	}
	return flush(cw)
}

// WriteDaysCSV writes the findings of several days as CSV: CSVHeader's
// columns after a first column, date, the day of the finding.
func WriteDaysCSV(w io.Writer, reports []*Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(append([]string{"date"}, CSVHeader...)); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	for _, r := range reports {
		for _, f := range r.Findings {
			if err := cw.Write(append([]string{r.Day.String()}, f.csvFields()...)); err != nil {
				return fmt.Errorf("write findings: %w", err)
			}
		}
	}
	return flush(cw)
}

func flush(cw *csv.Writer) error {
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	return nil
}
