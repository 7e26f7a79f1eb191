package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/reconcile"
	"github.com/iys-sync/iys-sync/internal/store"
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

// reconcileRangeJSON is reconcile --from --to --json: each day's
// reconcile --json, and their total.
type reconcileRangeJSON struct {
	From      string             `json:"from"`
	To        string             `json:"to"`
	BrandCode string             `json:"brandCode"`
	Days      []reconcileJSON    `json:"days"`
	Total     reconcileTotalJSON `json:"total"`
}

// reconcileTotalJSON sums the days of a range.
type reconcileTotalJSON struct {
	Days              int                    `json:"days"`
	Kinds             map[reconcile.Kind]int `json:"kinds"`
	Drift             int                    `json:"drift"`
	SummaryMismatches int                    `json:"summaryMismatches"`
	Repaired          int                    `json:"repaired"`
	Unrepaired        int                    `json:"unrepaired"`
	FileRows          int                    `json:"fileRows"`
	Records           int                    `json:"records"`
	LookedUp          int                    `json:"lookedUp"`
	UncleanDays       []string               `json:"uncleanDays"`
}

func runReconcile(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "reconcile")
	cf := settingFlags(fs, config.Database, config.IYSAPI, config.Logging)
	brand := fs.String("brand-code", "", "the connector's brand code")
	date := fs.String("date", "", "the Türkiye day to reconcile, YYYY-MM-DD (over already: İYS makes its file the day after)")
	from := fs.String("from", "", "the first Türkiye day of a range to reconcile, YYYY-MM-DD (İYS keeps the last 7 days' files); with --to")
	to := fs.String("to", "", "the last Türkiye day of the range, YYYY-MM-DD, over already; with --from")
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
	days, ranged, err := reconcileDays(*date, *from, *to, e.now())
	if err != nil {
		return err
	}
	if *asJSON && *csvOut == "-" {
		return usagef("--json and --csv - both want stdout: give --csv a file")
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	defer log.Sync() //nolint:errcheck // stderr
	st, client, err := openIYS(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.Connector(ctx, *brand)
	if err != nil {
		return err
	}
	reps := make([]*reconcile.Report, 0, len(days))
	for _, day := range days {
		rep, _, err := reconcile.RunRecorded(ctx, client, st, connectorRef(c), day, *repair, store.ReconcileByCommand, log)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
	}
	if ranged {
		if err := printReconcileRange(e, reps, *asJSON, *csvOut, *repair); err != nil {
			return err
		}
		return reconcileRangeOutcome(reps, *repair)
	}
	if err := printReconcileOutput(e, reps[0], *asJSON, *csvOut, *repair); err != nil {
		return err
	}
	return reconcileOutcome(reps[0], *repair)
}

// reconcileDays reads --date, or --from and --to: the Türkiye days to
// reconcile, each over already; ranged tells the range form, whose days İYS
// must still keep.
func reconcileDays(date, from, to string, now time.Time) (days []reconcile.Day, ranged bool, err error) {
	switch {
	case date != "" && (from != "" || to != ""):
		return nil, false, usagef("--date is one day, --from and --to a range: give one or the other")
	case from == "" && to == "":
		day, err := reconcileDay(date, now)
		return []reconcile.Day{day}, false, err
	case from == "" || to == "":
		return nil, true, usagef("--from and --to go together: the first and the last day of the range")
	}
	first, err := reconcile.ParseDay(from)
	if err != nil {
		return nil, true, usagef("--from: %v", err)
	}
	last, err := reconcile.ParseDay(to)
	if err != nil {
		return nil, true, usagef("--to: %v", err)
	}
	days, err = reconcile.Range(first, last, now)
	if err != nil {
		return nil, true, usagef("--from %s --to %s: %v", first, last, err)
	}
	return days, true, nil
}

// reconcileDay reads --date: a Türkiye day that is over.
func reconcileDay(date string, now time.Time) (reconcile.Day, error) {
	if date == "" {
		return reconcile.Day{}, usagef("--date is required (or --from and --to): the Türkiye day to reconcile, YYYY-MM-DD")
	}
	day, err := reconcile.ParseDay(date)
	if err != nil {
		return day, usagef("--date: %v", err)
	}
	if !day.Over(now) {
		return day, usagef("--date %s: the day is not over yet in Türkiye (İYS makes a day's file the day after)", day)
	}
	return day, nil
}

// printReconcileOutput writes the findings as CSV to csvOut (- for stdout,
// and then the text goes to stderr), and the result as JSON or as text.
func printReconcileOutput(e *env, rep *reconcile.Report, asJSON bool, csvOut string, repaired bool) error {
	text := e.stdout
	switch csvOut {
	case "":
	case "-":
		if err := reconcile.WriteCSV(e.stdout, rep.Findings); err != nil {
			return err
		}
		text = e.stderr
	default:
		if err := writeFindingsFile(csvOut, rep.Findings); err != nil {
			return err
		}
	}
	if !asJSON {
		printReconcile(text, rep, repaired)
		return nil
	}
	b, err := json.MarshalIndent(newReconcileJSON(rep), "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, string(b))
	return nil
}

// newReconcileJSON is the report as reconcile --json: lists empty, never null.
func newReconcileJSON(rep *reconcile.Report) reconcileJSON {
	out := reconcileJSON{Date: rep.Day.String(), BrandCode: rep.BrandCode, Kinds: rep.Kinds(), Drift: rep.Drift(),
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
	return out
}

// printReconcileRange writes a range's findings as CSV (with a date
// column) to csvOut, as printReconcileOutput does, then each day and the
// total as text, or all as JSON.
func printReconcileRange(e *env, reps []*reconcile.Report, asJSON bool, csvOut string, repaired bool) error {
	text := e.stdout
	switch csvOut {
	case "":
	case "-":
		if err := reconcile.WriteDaysCSV(e.stdout, reps); err != nil {
			return err
		}
		text = e.stderr
	default:
		if err := writeFileWhole(csvOut, func(w io.Writer) error { return reconcile.WriteDaysCSV(w, reps) }); err != nil {
			return err
		}
	}
	out := newReconcileRangeJSON(reps, repaired)
	if asJSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	for _, rep := range reps {
		printReconcile(text, rep, repaired)
		fmt.Fprintln(text)
	}
	t := out.Total
	fmt.Fprintf(text, "total of %s, %s to %s: drift %s, %s", plural(t.Days, "day", "days"), out.From, out.To,
		plural(t.Drift, "record", "records"), plural(t.SummaryMismatches, "summary mismatch", "summary mismatches"))
	if repaired {
		fmt.Fprintf(text, "; repaired %d, %d left as they were", t.Repaired, t.Unrepaired)
	}
	fmt.Fprintln(text)
	return nil
}

// newReconcileRangeJSON is a range's reports as reconcile --from --to --json.
func newReconcileRangeJSON(reps []*reconcile.Report, repaired bool) reconcileRangeJSON {
	out := reconcileRangeJSON{From: reps[0].Day.String(), To: reps[len(reps)-1].Day.String(), BrandCode: reps[0].BrandCode,
		Days: []reconcileJSON{}, Total: reconcileTotalJSON{Kinds: map[reconcile.Kind]int{}, UncleanDays: []string{}}}
	t := &out.Total
	for _, k := range reconcile.Kinds {
		t.Kinds[k] = 0
	}
	for _, rep := range reps {
		out.Days = append(out.Days, newReconcileJSON(rep))
		for k, n := range rep.Kinds() {
			t.Kinds[k] += n
		}
		t.Days++
		t.Drift += rep.Drift()
		t.SummaryMismatches += len(rep.SummaryMismatch)
		t.Repaired += rep.Repaired
		t.Unrepaired += rep.Unrepaired
		t.FileRows += rep.FileRows
		t.Records += rep.Records
		t.LookedUp += rep.LookedUp
		if !rep.Clean(repaired) {
			t.UncleanDays = append(t.UncleanDays, rep.Day.String())
		}
	}
	return out
}

// reconcileRangeOutcome is nil when no day is left to look at, else exit 3
// naming the days.
func reconcileRangeOutcome(reps []*reconcile.Report, repaired bool) error {
	out := newReconcileRangeJSON(reps, repaired)
	if len(out.Total.UncleanDays) == 0 {
		return nil
	}
	hint := " (--repair brings our records to İYS's state)"
	if repaired {
		hint = ""
	}
	return &partialError{msg: fmt.Sprintf("reconcile %s %s to %s: drift or summary mismatches left on %s%s",
		out.BrandCode, out.From, out.To, strings.Join(out.Total.UncleanDays, ", "), hint)}
}

// reconcileOutcome is nil when nothing is left to look at, else exit 3
// saying what is left.
func reconcileOutcome(rep *reconcile.Report, repaired bool) error {
	switch {
	case rep.Clean(repaired):
		return nil
	case repaired:
		return &partialError{msg: fmt.Sprintf("reconcile %s %s: %d drifting records left as they were, %d summary mismatches",
			rep.BrandCode, rep.Day, rep.Unrepaired, len(rep.SummaryMismatch))}
	}
	return &partialError{msg: fmt.Sprintf("reconcile %s %s: %s, %d summary mismatches (--repair brings our records to İYS's state)",
		rep.BrandCode, rep.Day, plural(rep.Drift(), "drifting record", "drifting records"), len(rep.SummaryMismatch))}
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

// writeFindingsFile writes the CSV whole or not at all.
func writeFindingsFile(path string, findings []reconcile.Finding) error {
	return writeFileWhole(path, func(w io.Writer) error { return reconcile.WriteCSV(w, findings) })
}

// writeFileWhole writes a findings file whole or not at all: a temporary
// file beside it, renamed into place.
func writeFileWhole(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if err := write(tmp); err != nil {
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
