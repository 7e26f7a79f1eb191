// Command iys-sync keeps İYS, Türkiye's national consent register, in step
// with the consents a brand holds. See README.md for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/redact"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now})
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// env is what a command may touch of the outside world, so that tests can run
// commands in-process.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time // the clock of status's deadline and lag; tests move it
}

// Exit statuses of docs/cli.md.
const (
	exitOK       = 0
	exitFatal    = 1
	exitUsage    = 2
	exitRejected = 3
)

// usageError is a mistake in the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// partialError means the command finished but some input was rejected or
// some work remains: exit 3. Its details are already in the command's output.
type partialError struct{ msg string }

func (e *partialError) Error() string { return e.msg }

// exitCode reports err once on stderr, scrubbed of every secret, and maps it
// to docs/cli.md's status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintln(stderr, "iys-sync:", redact.String(err.Error()))
	var cfgErr *config.Error
	if errors.As(err, &cfgErr) && cfgErr.Usage {
		return exitUsage
	}
	switch err.(type) {
	case *usageError:
		fmt.Fprintln(stderr, "Run 'iys-sync help' for the commands.")
		return exitUsage
	case *partialError:
		return exitRejected
	}
	return exitFatal
}
