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
	if _, err := parse(fs, args); err != nil {
		return err
	}
	say := func(format string, a ...any) { fmt.Fprintf(e.stdout, "\n== "+format+"\n", a...) }

	say("starting a throwaway PostgreSQL from the machine's binaries")
	cluster, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer cluster.Stop() //nolint:errcheck // best effort: the directory is temporary anyway
	fmt.Fprintf(e.stdout, "PostgreSQL on 127.0.0.1:%d\n", cluster.Port())

	sb, err := sandbox.New(sandbox.Options{Seed: 1,
		Brands: []sandbox.Brand{{IYSCode: demoIYSCode, BrandCode: demoBrandCode, Name: "Demo Brand"}}})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: sandbox listener: %w", err)
	}
	sbCtx, stopSandbox := context.WithCancel(context.Background())
	sbDone := make(chan error, 1)
	go func() { sbDone <- sb.Serve(sbCtx, ln) }()
	defer func() { stopSandbox(); <-sbDone }()
	apiURL := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "İYS sandbox on %s (user sandbox/sandbox)\n", apiURL)

	environ := map[string]string{
		"IYS_DATABASE_URL": cluster.URL("postgres"), "IYS_API_URL": apiURL,
		"IYS_USERNAME": sandbox.DefaultUsername, "IYS_PASSWORD": sandbox.DefaultPassword,
		"IYS_LOG_FORMAT": "console", "IYS_LOG_LEVEL": "warn", "IYS_BATCH_SIZE": "5", "IYS_RATE_LIMIT": "0",
	}
	sub := &env{stdout: e.stdout, stderr: e.stderr, getenv: func(k string) string { return environ[k] }, now: e.now}
	step := func(want int, args ...string) error {
		fmt.Fprintf(e.stdout, "$ iys-sync %s\n", strings.Join(args, " "))
		if code := exitCode(run(ctx, args, sub), e.stderr); code != want {
			return fmt.Errorf("demo: iys-sync %s exited %d, want %d", args[0], code, want)
		}
		return nil
	}

	say("installing the demo connector (the check asks the sandbox for the partner's rights)")
	if err := step(exitOK, "install", "--brand-code", demoBrandCode, "--iys-code", demoIYSCode); err != nil {
		return err
	}

	// Before iys-sync, the brand had recorded an ONAY for one customer at
	// İYS: a RET for that customer is listed, a RET for a stranger is not
	// (no_prior_record).
	now := time.Now()
	client, err := iysclient.New(apiURL, iysclient.Credentials{Username: sandbox.DefaultUsername, Password: sandbox.DefaultPassword})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := client.AddConsent(ctx, demoIYSCode, demoBrandCode, consent.Consent{Recipient: "+905551112233",
		RecipientType: consent.Bireysel, Type: consent.TypeMesaj, Status: consent.StatusOnay,
		ConsentDate: consent.NewDate(now.Add(-5 * time.Hour)), Source: consent.SourceWeb}); err != nil {
		return fmt.Errorf("demo: record the earlier consent: %w", err)
	}
	dir, err := os.MkdirTemp("", "iys-sync-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)
	at := func(ago time.Duration) string {
		return now.Add(-ago).In(consent.Istanbul).Format("02.01.2006 15:04:05")
	}
	email := filepath.Join(dir, "email.txt")
	sms := filepath.Join(dir, "sms.txt")
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
			return fmt.Errorf("demo: %w", err)
		}
	}
	say("importing an email file (one bad line, reported and skipped) and an SMS file (one older line, superseded)")
	if err := step(exitRejected, "import", "--brand-code", demoBrandCode, "--channel", "email", email); err != nil {
		return err
	}
	if err := step(exitOK, "import", "--brand-code", demoBrandCode, "--channel", "sms", "--type", "MESAJ,ARAMA", sms); err != nil {
		return err
	}

	say("syncing: bulk requests to İYS, polled to their results")
	if err := step(exitOK, "--run-now"); err != nil {
		return err
	}

	say("a citizen opts out of SMS through İYS's mobile app")
	if err := sandboxPost(ctx, apiURL+"/_sandbox/citizen", map[string]string{
		"iysCode": demoIYSCode, "brandCode": demoBrandCode, "recipient": "+905331234562",
		"recipientType": "BIREYSEL", "type": "MESAJ", "status": "RET", "source": "IYS_MOBIL",
	}); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "İYS now lists +905331234562 MESAJ as RET (source IYS_MOBIL), in its changes feed under source=IYS.")
	say("pulling İYS's changes back: the brand must respect the opt-out")
	if err := step(exitOK, "pull", "--brand-code", demoBrandCode); err != nil {
		return err
	}
	if err := step(exitOK, "report", "--brand-code", demoBrandCode, "--outcome", "from_iys"); err != nil {
		return err
	}

	say("the final status, and the records İYS did not list")
	if err := step(exitOK, "status"); err != nil {
		return err
	}
	if err := step(exitOK, "report", "--brand-code", demoBrandCode, "--state", "rejected"); err != nil {
		return err
	}
	if *keep {
		say("kept running: IYS_DATABASE_URL=%s IYS_API_URL=%s (Ctrl-C to stop and clean up)", cluster.URL("postgres"), apiURL)
		<-ctx.Done()
	}
	say("done: the sandbox and the database are removed")
	return nil
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
