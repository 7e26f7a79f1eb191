// Command benchsync is the helper of scripts/bench-sync.sh: it reads the
// figures of a finished sync run from the database and the sandbox, and runs
// the sync engine in-process with engine options the binary does not expose
// (the poll waits), to measure what they would change. It is not part of
// iys-sync.
//
//	benchsync figures -url DB_URL -api SANDBOX_URL   print one run's figures as KEY=VALUE lines
//	benchsync run -url DB_URL -api SANDBOX_URL [-user U -password P] [-batch N] [-concurrency N]
//	              [-rate R] [-poll-initial D] [-poll-max D]
//	    run the engine over every connector, as --run-now does but for its
//	    options, and print the seconds it took and the records it synced
//	benchsync connectors -url DB_URL -n N [-records R] [-round K]
//	    install connectors B00001..BN (store.InstallConnector, as install
//	    --skip-verify does) and give each R new pending SMS records
//	    (store.ImportItems, the intake's merge), distinct per round K
//	benchsync requests -api SANDBOX_URL
//	    print the requests the sandbox received so far, per endpoint, as
//	    ENDPOINT<TAB>COUNT lines, and its password logins as "logins<TAB>N"
//	benchsync runs -url DB_URL -since RUN_ID
//	    print the runs after RUN_ID: count, statuses, records sent, and the
//	    span from the first start to the last finish (KEY=VALUE lines)
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"time"

	_ "github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/store"
	engine "github.com/iys-sync/iys-sync/internal/sync"
	"github.com/iys-sync/iys-sync/internal/sync/iysadapter"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchsync figures|run [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{"figures": cmdFigures, "run": cmdRun, "connectors": cmdConnectors,
		"requests": cmdRequests, "runs": cmdRuns}
	f, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "benchsync: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchsync %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// cmdFigures prints what the script reports of a run, from the database
// (the last run of the only connector, its batches, its records) and the
// sandbox's stats:
//
//	records        records of the connector
//	done           synced or rejected (İYS's final word)
//	left           pending, in flight or failed
//	run_status     the last run's status
//	run_s          the last run's duration, started_at to finished_at (to its
//	               last batch's end when the run's end was not recorded)
//	batches        batches of that run with a saved requestId
//	send_span_s    first to last bulk request's submission in that run
//	finish_span_s  first submission to the last batch's end
//	bulk_requests  POSTs of bulk requests the sandbox received
//	throttled      429s the sandbox answered
//	items          consents the sandbox processed (recorded or refused)
//	claim_to_saved_ms  mean time from a batch's claim to its requestId saved
//	                   (waiting for the rate limiter, then the bulk request)
//	saved_to_done_ms   mean time from the requestId saved to the batch's end
//	                   (the poll waits, the polls, writing the results)
func cmdFigures(args []string) error {
	fs := flag.NewFlagSet("figures", flag.ExitOnError)
	dsn := fs.String("url", "", "database URL")
	api := fs.String("api", "", "sandbox base URL")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var (
		records, done, left, batches int
		status                       string
		runS, sendS, finishS         float64
		claimMS, doneMS              float64
	)
	err = db.QueryRow(`
		WITH r AS (SELECT * FROM runs ORDER BY id DESC LIMIT 1),
		     b AS (SELECT * FROM batches WHERE run_id = (SELECT id FROM r) AND request_id IS NOT NULL)
		SELECT (SELECT count(*) FROM consents),
		       (SELECT count(*) FROM consents WHERE state IN ('synced', 'rejected')),
		       (SELECT count(*) FROM consents WHERE state IN ('pending', 'in_flight', 'failed')),
		       (SELECT status FROM r),
		       (SELECT extract(epoch FROM coalesce(finished_at, (SELECT max(finished_at) FROM b)) - started_at)::float8 FROM r),
		       (SELECT count(*) FROM b),
		       coalesce((SELECT extract(epoch FROM max(submitted_at) - min(submitted_at))::float8 FROM b), 0),
		       coalesce((SELECT extract(epoch FROM max(finished_at) - min(submitted_at))::float8 FROM b), 0),
		       coalesce((SELECT 1000 * extract(epoch FROM avg(submitted_at - created_at))::float8 FROM b), 0),
		       coalesce((SELECT 1000 * extract(epoch FROM avg(finished_at - submitted_at))::float8 FROM b), 0)`).
		Scan(&records, &done, &left, &status, &runS, &batches, &sendS, &finishS, &claimMS, &doneMS)
	if err != nil {
		return err
	}
	var st struct {
		Requests  map[string]int64 `json:"requests"`
		Throttled int64            `json:"throttled"`
		Recorded  int64            `json:"recorded"`
		Refused   map[string]int64 `json:"refused"`
	}
	resp, err := http.Get(*api + "/_sandbox/stats")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sandbox stats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return err
	}
	items := st.Recorded
	for _, n := range st.Refused {
		items += n
	}
	fmt.Printf("records=%d\ndone=%d\nleft=%d\nrun_status=%s\nrun_s=%.3f\nbatches=%d\nsend_span_s=%.3f\nfinish_span_s=%.3f\n",
		records, done, left, status, runS, batches, sendS, finishS)
	fmt.Printf("bulk_requests=%d\nthrottled=%d\nitems=%d\nclaim_to_saved_ms=%.0f\nsaved_to_done_ms=%.0f\n",
		st.Requests["POST /sps/{iysCode}/brands/{brandCode}/consents/request"], st.Throttled, items, claimMS, doneMS)
	return nil
}

// cmdRun runs the engine as the binary's --run-now does (the same client
// and store; the client paced at -rate bulk requests a second with a burst
// of 1, as the binary's IYS_RATE_LIMIT), with the poll waits given.
func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	dsn := fs.String("url", "", "database URL")
	api := fs.String("api", "", "İYS (sandbox) base URL")
	user := fs.String("user", "sandbox", "İYS API user")
	pass := fs.String("password", "sandbox", "its password")
	batch := fs.Int("batch", 1000, "records per bulk request")
	conc := fs.Int("concurrency", 4, "bulk requests in flight")
	rate := fs.Float64("rate", 0, "bulk requests per second (0 = no limit)")
	pollInitial := fs.Duration("poll-initial", engine.DefaultPollInitial, "first wait before polling a bulk request")
	pollMax := fs.Duration("poll-max", engine.DefaultPollMax, "longest wait between polls")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	if *dsn == "" || *api == "" {
		return errors.New("-url and -api are required")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	client, err := iysclient.New(*api, iysclient.Credentials{Username: *user, Password: *pass},
		iysclient.WithRateLimit(*rate, 1))
	if err != nil {
		return err
	}
	eng, err := engine.New(st, iysadapter.New(client), engine.Options{BatchSize: *batch, Concurrency: *conc,
		PollInitial: *pollInitial, PollMax: *pollMax})
	if err != nil {
		return err
	}
	start := time.Now()
	sum, err := eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerRunNow})
	secs := time.Since(start).Seconds()
	if err != nil {
		return err
	}
	n := 0
	for _, c := range sum.Connectors {
		if c.Status != "completed" || c.Pending > 0 {
			return fmt.Errorf("connector %s: %s, %d left: %s", c.BrandCode, c.Status, c.Pending, c.Err)
		}
		n += c.Accepted + c.Rejected
	}
	fmt.Printf("seconds=%.3f\nrecords=%d\n", secs, n)
	return nil
}

// cmdConnectors installs -n connectors and gives each -records new pending
// records, through the store as install --skip-verify and the intake do.
func cmdConnectors(args []string) error {
	fs := flag.NewFlagSet("connectors", flag.ExitOnError)
	dsn := fs.String("url", "", "database URL")
	n := fs.Int("n", 10, "connectors B00001..BN")
	records := fs.Int("records", 0, "new pending SMS records per connector")
	round := fs.Int("round", 0, "makes the records' recipients distinct from other rounds' (0..99)")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	if *dsn == "" || *n < 1 || *n > 99999 || *records < 0 || *records > 99 || *round < 0 || *round > 99 {
		return errors.New("want -url, -n 1..99999, -records 0..99, -round 0..99")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	for i := 1; i <= *n; i++ {
		c, _, err := st.InstallConnector(ctx, store.Connector{BrandCode: fmt.Sprintf("B%05d", i),
			IYSCode: fmt.Sprintf("%06d", 700000+i), Channels: []consent.Type{consent.TypeMesaj}, RecipientType: consent.Bireysel,
			FirstSyncAt: now})
		if err != nil {
			return err
		}
		if *records == 0 {
			continue
		}
		rows := make([]store.ImportRow, *records)
		for j := range rows {
			// +90 5 RR NNNNN JJ: distinct per round, connector and record.
			rows[j] = store.ImportRow{Line: j + 1, Recipient: fmt.Sprintf("+905%02d%05d%02d", *round, i, j),
				RecipientType: consent.Bireysel, Type: consent.TypeMesaj, Status: consent.StatusOnay,
				Source: consent.SourceMesaj, ConsentDate: consent.NewDate(now.Add(-time.Hour - time.Duration(j)*time.Second))}
		}
		if _, err := st.ImportItems(ctx, c.ID, "api:bench", fmt.Sprintf("bench-%d-%d", *round, i), rows,
			[]store.IntakeChannel{{Channel: "sms", Valid: len(rows)}}); err != nil {
			return err
		}
	}
	return nil
}

// cmdRequests prints the sandbox's request counts per endpoint.
func cmdRequests(args []string) error {
	fs := flag.NewFlagSet("requests", flag.ExitOnError)
	api := fs.String("api", "", "sandbox base URL")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	var st struct {
		Requests map[string]int64 `json:"requests"`
		Tokens   struct {
			Logins int64 `json:"logins"`
		} `json:"tokens"`
	}
	resp, err := http.Get(*api + "/_sandbox/stats")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sandbox stats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return err
	}
	keys := make([]string, 0, len(st.Requests))
	for k := range st.Requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s\t%d\n", k, st.Requests[k])
	}
	fmt.Printf("logins\t%d\n", st.Tokens.Logins)
	return nil
}

// cmdRuns prints the runs after -since: runs, completed, sent, span_s (first
// start to last finish), last (the highest run id).
func cmdRuns(args []string) error {
	fs := flag.NewFlagSet("runs", flag.ExitOnError)
	dsn := fs.String("url", "", "database URL")
	since := fs.Int64("since", 0, "runs after this id")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var runs, completed, sent int
	var span float64
	var last int64
	err = db.QueryRow(`
		SELECT count(*), count(*) FILTER (WHERE status = 'completed'), coalesce(sum(sent), 0),
		       coalesce(extract(epoch FROM max(finished_at) - min(started_at))::float8, 0),
		       coalesce(max(id), $1)
		FROM runs WHERE id > $1`, *since).Scan(&runs, &completed, &sent, &span, &last)
	if err != nil {
		return err
	}
	fmt.Printf("runs=%d\ncompleted=%d\nsent=%d\nspan_s=%.3f\nlast=%d\n", runs, completed, sent, span, last)
	return nil
}
