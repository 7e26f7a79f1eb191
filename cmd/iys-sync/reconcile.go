package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/reconcile"
)

// reconcileJSON is reconcile --json.
type reconcileJSON struct {
	Date            string                           `json:"date"`
	BrandCode       string                           `json:"brandCode"`
	Kinds           map[reconcile.Kind]int           `json:"kinds"`
	Drift           int                              `json:"drift"`
	SummaryMismatch []reconcile.Mismatch             `json:"summaryMismatch"`
	SummaryUnread   map[consent.RecipientType]string `json:"summaryUnread,omitempty"`
	Repaired        int                              `json:"repaired"`
	Unrepaired      int                              `json:"unrepaired"`
	FileRows        int                              `json:"fileRows"`
	UnreadableLines []int                            `json:"unreadableLines"`
	Records         int                              `json:"records"`
	LookedUp        int                              `json:"lookedUp"`
}

// reconcileHeader is the CSV of the findings: one record a line, drift or
// not (the drift column tells).
var reconcileHeader = []string{"kind", "drift", "recipient", "recipientType", "type",
	"ourStatus", "ourConsentDate", "ourSource", "ourState", "ourOutcome",
	"iysStatus", "iysConsentDate", "iysSource", "iysCreationDate", "iysTransactionId", "fileLine", "lookedUp"}

func findingFields(f reconcile.Finding) []string {
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

func runReconcile(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "reconcile")
	cf := config.RegisterFlags(fs)
	brand := fs.String("brand-code", "", "the connector's brand code")
	date := fs.String("date", "", "the Türkiye day to reconcile, YYYY-MM-DD (over already: İYS makes its file the day after)")
	repair := fs.Bool("repair", false, "bring our records to İYS's state: İYS's newer records are applied, ours İYS does not hold are sent again")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	csvOut := fs.String("csv", "", "write the drifting records (and the other findings) as CSV to this file; - for stdout")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("reconcile takes no operands, got %q", rest[0])
	}
	if err := checkCode("brand-code", *brand); err != nil {
		return err
	}
	if *date == "" {
		return usagef("--date is required: the Türkiye day to reconcile, YYYY-MM-DD")
	}
	day, err := reconcile.ParseDay(*date)
	if err != nil {
		return usagef("--date: %v", err)
	}
	if now := e.now(); day.End.After(now) {
		return usagef("--date %s: the day is not over yet in Türkiye (İYS makes a day's file the day after)", day)
	}
	if *asJSON && *csvOut == "-" {
		return usagef("--json and --csv - both want stdout: give --csv a file")
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return err
	}
	if err := cfg.Require(config.NeedDatabase, config.NeedIYS); err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	defer log.Sync() //nolint:errcheck // stderr
	client, err := newIYSClient(cfg, log)
	if err != nil {
		return err
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
	rep, err := reconcile.Run(ctx, client, st, consent.ConnectorRef{ID: c.ID, BrandCode: c.BrandCode, IYSCode: c.IYSCode, Active: true},
		day, *repair, log)
	if err != nil {
		return err
	}

	text := e.stdout
	switch *csvOut {
	case "":
	case "-":
		if err := writeFindings(e.stdout, rep.Findings); err != nil {
			return err
		}
		text = e.stderr
	default:
		if err := writeFindingsFile(*csvOut, rep.Findings); err != nil {
			return err
		}
	}
	if *asJSON {
		out := reconcileJSON{Date: day.String(), BrandCode: rep.BrandCode, Kinds: rep.Kinds(), Drift: rep.Drift(),
			SummaryMismatch: rep.SummaryMismatch, Repaired: rep.Repaired, Unrepaired: rep.Unrepaired,
			FileRows: rep.FileRows, UnreadableLines: rep.Unreadable, Records: rep.Records, LookedUp: rep.LookedUp}
		if out.SummaryMismatch == nil {
			out.SummaryMismatch = []reconcile.Mismatch{}
		}
		if out.UnreadableLines == nil {
			out.UnreadableLines = []int{}
		}
		if len(rep.SummaryUnread) > 0 {
			out.SummaryUnread = rep.SummaryUnread
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, string(b))
	} else {
		printReconcile(text, rep, *repair)
	}
	if rep.Clean(*repair) {
		return nil
	}
	if *repair {
		return &partialError{msg: fmt.Sprintf("reconcile %s %s: %d drifting records left as they were, %d summary mismatches",
			rep.BrandCode, day, rep.Unrepaired, len(rep.SummaryMismatch))}
	}
	return &partialError{msg: fmt.Sprintf("reconcile %s %s: %s, %d summary mismatches (--repair brings our records to İYS's state)",
		rep.BrandCode, day, plural(rep.Drift(), "drifting record", "drifting records"), len(rep.SummaryMismatch))}
}

func printReconcile(w io.Writer, rep *reconcile.Report, repaired bool) {
	fmt.Fprintf(w, "reconcile %s for %s (Türkiye day)\n", rep.BrandCode, rep.Day)
	fmt.Fprintf(w, "İYS's change file: %s", plural(rep.FileRows, "change", "changes"))
	if len(rep.Unreadable) > 0 {
		fmt.Fprintf(w, " (%d unreadable, not compared: lines %v)", len(rep.Unreadable), rep.Unreadable)
	}
	fmt.Fprintf(w, "; %s of interest, %d looked up at İYS one by one\n", plural(rep.Records, "record", "records"), rep.LookedUp)
	kinds := rep.Kinds()
	fmt.Fprintf(w, "drift: %s\n", plural(rep.Drift(), "record", "records"))
	for _, drift := range []bool{true, false} {
		if !drift {
			fmt.Fprintln(w, "not drift:")
		}
		for _, k := range reconcile.Kinds {
			if k.Drift() == drift {
				fmt.Fprintf(w, "  %-20s %5d  %s\n", k, kinds[k], k.Describe())
			}
		}
	}
	for rt, why := range rep.SummaryUnread {
		fmt.Fprintf(w, "daily summary of %s not compared: %s\n", rt, why)
	}
	if len(rep.SummaryMismatch) == 0 {
		fmt.Fprintln(w, "daily summary: agrees with the change file and with our records")
	} else {
		fmt.Fprintf(w, "daily summary: %s\n", plural(len(rep.SummaryMismatch), "mismatch", "mismatches"))
		for _, m := range rep.SummaryMismatch {
			status := string(m.Status)
			if status == "" {
				status = "total"
			}
			what := "the change file has"
			if m.Against == reconcile.AgainstOurs {
				what = "we say İYS accepted"
			}
			fmt.Fprintf(w, "  %s %s %s %s: the summary counts %d, %s %d\n", m.RecipientType, m.Type, m.Source, status, m.Summary, what, m.Counted)
		}
	}
	if repaired {
		fmt.Fprintf(w, "repaired: %s", plural(rep.Repaired, "record", "records"))
		if rep.Unrepaired > 0 {
			fmt.Fprintf(w, "; %d left as they were (a tie of consent dates, no source, a citizen's record İYS forgot, or changed meanwhile)", rep.Unrepaired)
		}
		fmt.Fprintln(w)
	}
}

func writeFindings(w io.Writer, findings []reconcile.Finding) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(reconcileHeader); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	for _, f := range findings {
		if err := cw.Write(findingFields(f)); err != nil {
			return fmt.Errorf("write findings: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	return nil
}

// writeFindingsFile writes the CSV whole or not at all: a temporary file
// beside it, renamed into place.
func writeFindingsFile(path string, findings []reconcile.Finding) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if err := writeFindings(tmp, findings); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	return nil
}
