package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/pgtemp"
	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// The demo brand.
const (
	demoIYSCode   = "700001"
	demoBrandCode = "600001"
)

// runDemo runs the whole job on embedded defaults: a throwaway PostgreSQL,
// the sandbox in-process, a connector, fresh upload files, a sync, a
// citizen's opt-out, and the final status. It drives the same commands an
// operator types, in-process, so that the demo cannot drift from them.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "demo")
	keep := fs.Bool("keep", false, "keep the throwaway database and sandbox running until Ctrl-C, to look around")
	if err := noOperands(fs, args); err != nil {
		return err
	}
	w, err := startDemo(ctx, e)
	if err != nil {
		return err
	}
	defer w.stop()
	if err := w.play(ctx); err != nil {
		return err
	}
	if *keep {
		w.say("kept running: IYS_DATABASE_URL=%s IYS_API_URL=%s (Ctrl-C to stop and clean up)", w.cluster.URL("postgres"), w.apiURL)
		<-ctx.Done()
	}
	w.say("done: the sandbox and the database are removed")
	return nil
}

// demo is the demo's world: a throwaway PostgreSQL, the sandbox, and the
// environment the commands it runs see.
type demo struct {
	e           *env
	sub         *env // the commands' environment: the world's database and sandbox
	cluster     *pgtemp.Cluster
	apiURL      string
	stopSandbox func()
	dir         string // the upload files
}

func (w *demo) say(format string, a ...any) { fmt.Fprintf(w.e.stdout, "\n== "+format+"\n", a...) }

// startDemo starts the database and the sandbox, and makes a directory
// for the upload files. The caller calls stop.
func startDemo(ctx context.Context, e *env) (*demo, error) {
	w := &demo{e: e, stopSandbox: func() {}}
	w.say("starting a throwaway PostgreSQL from the machine's binaries")
	cluster, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	w.cluster = cluster
	fmt.Fprintf(e.stdout, "PostgreSQL on 127.0.0.1:%d\n", cluster.Port())

	sb, err := sandbox.New(sandbox.Options{Seed: 1,
		Brands: []sandbox.Brand{{IYSCode: demoIYSCode, BrandCode: demoBrandCode, Name: "Demo Brand"}}})
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("demo: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("demo: sandbox listener: %w", err)
	}
	sbCtx, stop := context.WithCancel(context.Background())
	sbDone := make(chan error, 1)
	go func() { sbDone <- sb.Serve(sbCtx, ln) }()
	w.stopSandbox = func() { stop(); <-sbDone }
	w.apiURL = "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "İYS sandbox on %s (user sandbox/sandbox)\n", w.apiURL)

	environ := map[string]string{
		"IYS_DATABASE_URL": cluster.URL("postgres"), "IYS_API_URL": w.apiURL,
		"IYS_USERNAME": sandbox.DefaultUsername, "IYS_PASSWORD": sandbox.DefaultPassword,
		"IYS_LOG_FORMAT": "console", "IYS_LOG_LEVEL": "warn", "IYS_BATCH_SIZE": "5", "IYS_RATE_LIMIT": "0",
	}
	w.sub = &env{stdout: e.stdout, stderr: e.stderr, getenv: func(k string) string { return environ[k] }, now: e.now}
	if w.dir, err = os.MkdirTemp("", "iys-sync-demo-"); err != nil {
		w.stop()
		return nil, fmt.Errorf("demo: %w", err)
	}
	return w, nil
}

func (w *demo) stop() {
	if w.dir != "" {
		os.RemoveAll(w.dir) //nolint:errcheck // best effort, as the cluster's
	}
	w.stopSandbox()
	w.cluster.Stop() //nolint:errcheck // best effort: the directory is temporary anyway
}

// step runs one command as an operator would type it, and wants its exit.
func (w *demo) step(ctx context.Context, want int, args ...string) error {
	fmt.Fprintf(w.e.stdout, "$ iys-sync %s\n", strings.Join(args, " "))
	if code := exitCode(run(ctx, args, w.sub), w.e.stderr); code != want {
		return fmt.Errorf("demo: iys-sync %s exited %d, want %d", args[0], code, want)
	}
	return nil
}

// play is the demo's script: install, import, sync, a citizen's opt-out
// pulled back, the final status and report.
func (w *demo) play(ctx context.Context) error {
	w.say("installing the demo connector (the check asks the sandbox for the partner's rights)")
	if err := w.step(ctx, exitOK, "install", "--brand-code", demoBrandCode, "--iys-code", demoIYSCode); err != nil {
		return err
	}
	now := time.Now()
	if err := w.recordEarlierConsent(ctx, now); err != nil {
		return err
	}
	email, sms, err := writeDemoFiles(w.dir, now)
	if err != nil {
		return err
	}
	w.say("importing an email file (one bad line, reported and skipped) and an SMS file (one older line, superseded)")
	if err := w.step(ctx, exitRejected, "import", "--brand-code", demoBrandCode, "--channel", "email", email); err != nil {
		return err
	}
	if err := w.step(ctx, exitOK, "import", "--brand-code", demoBrandCode, "--channel", "sms", "--type", "MESAJ,ARAMA", sms); err != nil {
		return err
	}

	w.say("syncing: bulk requests to İYS, polled to their results")
	if err := w.step(ctx, exitOK, "--run-now"); err != nil {
		return err
	}

	w.say("a citizen opts out of SMS through İYS's mobile app")
	if err := sandboxPost(ctx, w.apiURL+"/_sandbox/citizen", map[string]string{
		"iysCode": demoIYSCode, "brandCode": demoBrandCode, "recipient": "+905331234562",
		"recipientType": "BIREYSEL", "type": "MESAJ", "status": "RET", "source": "IYS_MOBIL",
	}); err != nil {
		return err
	}
	fmt.Fprintln(w.e.stdout, "İYS now lists +905331234562 MESAJ as RET (source IYS_MOBIL), in its changes feed under source=IYS.")
	w.say("pulling İYS's changes back: the brand must respect the opt-out")
	if err := w.step(ctx, exitOK, "pull", "--brand-code", demoBrandCode); err != nil {
		return err
	}
	if err := w.step(ctx, exitOK, "report", "--brand-code", demoBrandCode, "--outcome", "from_iys"); err != nil {
		return err
	}

	w.say("the regulator asks: show this consent. Its whole story, and proof that no one edited it")
	if err := w.step(ctx, exitOK, "history", "--brand-code", demoBrandCode, "--recipient", "+905331234562", "--type", "MESAJ"); err != nil {
		return err
	}
	if err := w.step(ctx, exitOK, "verify", "--brand-code", demoBrandCode); err != nil {
		return err
	}

	w.say("the final status, and the records İYS did not list")
	if err := w.step(ctx, exitOK, "status"); err != nil {
		return err
	}
	return w.step(ctx, exitOK, "report", "--brand-code", demoBrandCode, "--state", "rejected")
}

// recordEarlierConsent records at İYS, before iys-sync, the brand's ONAY
// for one customer: a RET for that customer is listed, a RET for a
// stranger is not (no_prior_record).
func (w *demo) recordEarlierConsent(ctx context.Context, now time.Time) error {
	client, err := iysclient.New(w.apiURL, iysclient.Credentials{Username: sandbox.DefaultUsername, Password: sandbox.DefaultPassword})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := client.AddConsent(ctx, demoIYSCode, demoBrandCode, consent.Consent{Recipient: "+905551112233",
		RecipientType: consent.Bireysel, Type: consent.TypeMesaj, Status: consent.StatusOnay,
		ConsentDate: consent.NewDate(now.Add(-5 * time.Hour)), Source: consent.SourceWeb}); err != nil {
		return fmt.Errorf("demo: record the earlier consent: %w", err)
	}
	return nil
}

// writeDemoFiles writes the demo's email and SMS files in dir, dated
// hours before now: a bad line, a superseded line, RETs with and without
// an earlier record at İYS.
func writeDemoFiles(dir string, now time.Time) (email, sms string, err error) {
	at := func(ago time.Duration) string {
		return now.Add(-ago).In(consent.Istanbul).Format("02.01.2006 15:04:05")
	}
	email = filepath.Join(dir, "email.txt")
	sms = filepath.Join(dir, "sms.txt")
	files := map[string]string{
		email: strings.Join([]string{
			"ayse.yilmaz@example.com; mobileapp; ONAY; " + at(3*time.Hour) + "; cust-1001",
			"mehmet+news@example.org; web; ONAY; " + at(2*time.Hour) + "; cust-1002",
			"stranger@example.com; email; RET; " + at(time.Hour) + "; cust-1003",
			"not-an-address@; web; ONAY; " + at(time.Hour) + "; cust-1004",
		}, "\n") + "\n",
		sms: strings.Join([]string{
			"905331234562; SMS; ONAY; " + at(3*time.Hour) + "; cust-1001",
			"905551112233; mobile/web; RET; " + at(30*time.Minute) + "; cust-1005",
			"905321112244; form; ONAY; " + at(2*time.Hour) + "; cust-1006",
			"905339998877; SMS; RET; " + at(time.Hour) + "; cust-1007",
			"905331234562; SMS; RET; " + at(4*time.Hour) + "; cust-1001",
		}, "\n") + "\n",
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return "", "", fmt.Errorf("demo: %w", err)
		}
	}
	return email, sms, nil
}

// sandboxPost sends one admin request to the sandbox.
func sandboxPost(ctx context.Context, url string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("demo: sandbox: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("demo: sandbox answered %s: %s", resp.Status, msg)
	}
	return nil
}
