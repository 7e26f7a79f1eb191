package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
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
		{"reconcile", "compare a day of İYS's change file and summary with our records; --repair fixes", runReconcile},
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
		for _, a := range args {
			switch a {
			case "-h", "-help", "--help":
				printUsage(e.stdout)
				return nil
			}
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

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "iys-sync keeps İYS (İleti Yönetim Sistemi) in step with a brand's consents.")
	fmt.Fprintln(w, "\nUsage: iys-sync COMMAND [flags]   (iys-sync COMMAND -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-11s %s\n", "--run-now", "run the sync now and exit: iys-sync --run-now [--brand-code B] [--max-duration D]")
	fmt.Fprintln(w, "\nSettings come from IYS_* environment variables, flags of the same meaning, or --config FILE.")
}

// newFlagSet makes a command's flag set whose errors are usage errors.
func newFlagSet(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("iys-sync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
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
