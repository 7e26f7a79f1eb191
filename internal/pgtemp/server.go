package pgtemp

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // readiness probe
)

// errPortTaken means the server could not bind its port: try another one.
var errPortTaken = errors.New("port already in use")

// server is one run of the postgres process.
type server struct {
	cmd     *exec.Cmd
	path    string
	logPath string
	log     *os.File
	exited  chan struct{} // closed once the process is reaped
	waitErr error         // valid after exited is closed
}

// startServer starts postgres and waits until it answers on url. On error
// the process is gone.
func startServer(ctx context.Context, own owner, path, logPath string, args []string, url string) (*server, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	start, _ := logf.Seek(0, 2) // the tail of this run only, after a restart
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = toolEnv()
	cmd.SysProcAttr = own.sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	s := &server{cmd: cmd, path: path, logPath: logPath, log: logf, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, url); err != nil {
		s.kill()
		tail := fileTail(logPath, start)
		if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return nil, fmt.Errorf("%s: %w\n%s", path, err, tail)
	}
	return s, nil
}

// waitReady polls with a real connection until the server accepts one.
func (s *server) waitReady(ctx context.Context, url string) error {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return fmt.Errorf("readiness probe: %w", err)
	}
	defer db.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = db.PingContext(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited during start: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections in time (%v): last probe: %v", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// stop asks for a fast shutdown (SIGINT: roll back sessions, checkpoint,
// exit), then an immediate one, then kills.
func (s *server) stop() error {
	defer s.log.Close()
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 60 * time.Second}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 10 * time.Second}} {
		if err := s.cmd.Process.Signal(step.sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal %s: %w", s.path, err)
		}
		select {
		case <-s.exited:
			if step.sig != syscall.SIGINT {
				return fmt.Errorf("%s did not shut down on SIGINT; sent %v", s.path, step.sig)
			}
			return nil
		case <-time.After(step.wait):
		}
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", s.path, s.cmd.Process.Pid)
}

// gone reports whether the process has exited and been reaped.
func (s *server) gone() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// kill ends a server that failed to start: immediate shutdown, then SIGKILL.
func (s *server) kill() {
	defer s.log.Close()
	s.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck // it may be gone already
	select {
	case <-s.exited:
		return
	case <-time.After(5 * time.Second):
	}
	s.cmd.Process.Kill() //nolint:errcheck // same
	<-s.exited
}

// runTool runs a short-lived program (initdb) and reports its output on failure.
func runTool(ctx context.Context, own owner, path string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = toolEnv()
	cmd.SysProcAttr = own.sysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed: %w\n%s", path, err, tail(out.String()))
	}
	return nil
}

// toolEnv is our environment without PG* variables (PGDATA, PGPORT... would
// steer the tools elsewhere) and with the C locale, for English messages.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

const tailLines = 20

// tail keeps the last lines of a tool's output: the error is at the end.
func tail(s string) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return strings.Join(lines, "\n")
}

// fileTail is tail of a log file from offset on (at most the last 64 KiB).
func fileTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-from > 64<<10 {
		from = fi.Size() - 64<<10
	}
	if _, err := f.Seek(from, 0); err != nil {
		return ""
	}
	b := make([]byte, 64<<10)
	n, _ := f.Read(b)
	return tail(string(b[:n]))
}
