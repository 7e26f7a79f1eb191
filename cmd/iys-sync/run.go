package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/iys-sync/iys-sync/internal/config"
)

// command is one subcommand of docs/cli.md.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"install", "register a brand's connector", runInstall},
		{"connectors", "list connectors", runConnectors},
		{"import", "import email or SMS upload files as pending consents", runImport},
		{"status", "show each connector's records and runs", runStatus},
		{"pull", "pull İYS-side changes (citizens' opt-outs) now", runPull},
		{"report", "export per-record outcomes as CSV or JSON", runReport},
		{"history", "tell the story of one recipient's consents, oldest first", runHistory},
		{"verify", "check that no record's history was edited, deleted or added to by hand", runVerify},
		{"prune", "delete the history past IYS_RETENTION", runPrune},
		{"forget", "erase a recipient's records and history where retention allows", runForget},
		{"reconcile", "compare a day of İYS's change file and summary with our records; --repair fixes", runReconcile},
		{"redrive", "send failed or rejected records again: back to pending for the next run", runRedrive},
		{"pause", "keep a connector out of runs; imports and intake go on", runPause},
		{"resume", "bring a paused connector back into runs", runResume},
		{"uninstall", "stop serving a connector; --purge --yes also deletes its records", runUninstall},
		{"runs", "list past runs, newest first", runRuns},
		{"demo", "run the whole job on a throwaway database and the sandbox", runDemo},
		{"sandbox", "run the local İYS simulator", runSandbox},
		{"serve", "run the nightly scheduler until SIGTERM (the default)", func(ctx context.Context, e *env, args []string) error {
			return runServe(ctx, e, args)
		}},
	}
}

// run dispatches the command line. With no command, or only flags, it is serve
// (or --run-now).
func run(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if !isRunNow(args) && slices.ContainsFunc(args, isHelp) {
			printUsage(e.stdout)
			return nil
		}
		return runServeOrNow(ctx, e, args)
	}
	name := args[0]
	if name == "help" {
		printUsage(e.stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, e, args[1:])
		}
	}
	return usagef("unknown command %q", name)
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "iys-sync keeps İYS (İleti Yönetim Sistemi) in step with a brand's consents.")
	fmt.Fprintln(w, "\nUsage: iys-sync COMMAND [flags]   (iys-sync COMMAND -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-11s %s\n", "--run-now", "run the sync now and exit: iys-sync --run-now [--brand-code B] [--max-duration D] [--json]")
	fmt.Fprintln(w, "\nSettings come from IYS_* environment variables, --config FILE, or the flags of the commands that read them.")
}

// newFlagSet makes a command's flag set whose errors are usage errors.
func newFlagSet(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("iys-sync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { printFlags(fs, nil) }
	return fs
}

// settingFlags registers on fs the flags of the settings of groups, the
// ones the command reads, and makes its help show them after its own.
func settingFlags(fs *flag.FlagSet, groups ...config.Group) *config.Flags {
	cf := config.RegisterFlags(fs, groups...)
	fs.Usage = func() { printFlags(fs, cf) }
	return cf
}

// settingsHeading introduces the settings flags of a command's help.
const settingsHeading = "Settings (a flag overrides its environment variable, which overrides the --config file):"

// printFlags is a command's help: its own flags, then the settings it
// takes, under settingsHeading. The refused flags of secrets the command
// does not read are left out.
func printFlags(fs *flag.FlagSet, cf *config.Flags) {
	own := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	set := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(fl *flag.Flag) {
		to := own
		switch {
		case cf != nil && cf.Takes(fl.Name):
			to = set
		case cf != nil && cf.Refused(fl.Name):
			return
		}
		to.Var(fl.Value, fl.Name, fl.Usage)
		to.Lookup(fl.Name).DefValue = fl.DefValue
	})
	w := fs.Output()
	own.SetOutput(w)
	set.SetOutput(w)
	fmt.Fprintf(w, "Usage of %s:\n", fs.Name())
	own.PrintDefaults()
	if cf != nil {
		fmt.Fprintf(w, "\n%s\n", settingsHeading)
		set.PrintDefaults()
	}
}

// noOperands parses the flags of a command that takes no operands.
func noOperands(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("%s takes no operands, got %q", strings.TrimPrefix(fs.Name(), "iys-sync "), rest[0])
	}
	return nil
}

// parse parses args, flags and operands in any order, and returns the
// operands; -h is not an error, any other mistake is a usage error.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(operands, rest...), nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// errHelp ends a command that printed its help: exit 0.
var errHelp = errors.New("help shown")
