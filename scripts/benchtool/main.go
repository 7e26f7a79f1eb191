// Command benchtool is the helper of scripts/bench-import-cli.sh: it starts a
// throwaway PostgreSQL, generates the upload file and the COPY input of the
// same rows, makes fresh databases, runs SQL, and times the bare COPY the import
// is measured against. It is not part of iys-sync.
//
//	benchtool cluster -url-file FILE [-set NAME=VALUE]...   start a throwaway cluster (with these server settings),
//	                                    write its admin URL to FILE, run until SIGTERM/SIGINT
//	benchtool gen -rows N [-start K] [-shuffle] -upload FILE [-copy FILE]
//	benchtool freshdb -url ADMIN_URL -name DB   (re)create database DB, print its URL
//	benchtool sql -url URL STATEMENT...         run statements, print the first column of any rows
//	benchtool copy -url URL -copy FILE          time a bare COPY of FILE into a fresh table "bare", print seconds
package main

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"

	"github.com/iys-sync/iys-sync/internal/pgtemp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool cluster|gen|freshdb|sql|copy [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"cluster": cmdCluster, "gen": cmdGen, "freshdb": cmdFreshDB, "sql": cmdSQL, "copy": cmdCopy,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "benchtool: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// cmdCluster runs a throwaway cluster until it is told to stop.
func cmdCluster(args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	urlFile := fs.String("url-file", "", "write the admin URL here once the server accepts connections")
	settings := map[string]string{}
	fs.Func("set", "a server setting NAME=VALUE (repeatable), such as shared_buffers=3GB", func(s string) error {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return errors.New("want NAME=VALUE")
		}
		settings[name] = value
		return nil
	})
	fs.Parse(args) //nolint:errcheck // ExitOnError
	if *urlFile == "" {
		return errors.New("-url-file is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := pgtemp.Start(ctx, pgtemp.Options{Settings: settings})
	if err != nil {
		return err
	}
	tmp := *urlFile + ".tmp"
	err = os.WriteFile(tmp, []byte(c.URL("postgres")+"\n"), 0o600)
	if err == nil {
		err = os.Rename(tmp, *urlFile) // the script waits for the file: it appears whole
	}
	if err != nil {
		c.Stop() //nolint:errcheck // the first error is the one to report
		return err
	}
	<-ctx.Done()
	return c.Stop()
}

// platforms cycle through the lines; sources are what docs/upload-format.md maps
// them to, so that the COPY input holds what the importer parses from the same line.
var platforms = []struct{ platform, source string }{
	{"SMS", "HS_MESAJ"}, {"web", "HS_WEB"}, {"mobileapp", "HS_MOBIL"}, {"form", "HS_FIZIKSEL_ORTAM"},
}

// cmdGen writes N lines of an SMS upload file and the COPY input of the same
// rows as the import stores them (connector 1, BIREYSEL, MESAJ). Phones are
// distinct (i*7919+12345 mod 10^9 is a permutation); consent times lie
// within the last day, in Türkiye time. Line i is the same whatever the file: -start K writes lines K to K+N-1, so that files of
// successive starts add new recipients to those of the earlier ones (a
// database grown by importing the difference). Without -copy, no COPY input.
//
// That order is kind to a COPY: the phones rise in 8 interleaved runs and
// the times fall in runs of 2,324 lines, so a COPY's inserts into the key's
// index and the pending records' index land next to the one before. The
// import sorts by key whatever the order. -shuffle writes the same lines in
// a random order (the same for every run: a fixed seed), as a file
// exported in no particular order would be.
//
// The COPY input is in COPY's text format (tab-separated), the format the
// importer's own COPY uses: CSV would make the yardstick some 4% slower.
func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	rows := fs.Int("rows", 1_000_000, "lines to write")
	start := fs.Int("start", 0, "the first line's number: lines -start to -start + -rows - 1")
	uploadPath := fs.String("upload", "", "the SMS upload file to write")
	copyPath := fs.String("copy", "", "the COPY input (text format) to write; none when empty")
	shuffle := fs.Bool("shuffle", false, "write the lines in a random order (fixed seed)")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	if *uploadPath == "" || *rows <= 0 || *start < 0 || *start+*rows > 1_000_000_000 {
		return errors.New("want -rows 1..10^9, -start 0.. (-start + -rows at most 10^9: the phones repeat beyond) and -upload FILE")
	}
	if *copyPath == "" {
		*copyPath = os.DevNull
	}
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		return err
	}
	uf, err := os.Create(*uploadPath)
	if err != nil {
		return err
	}
	defer uf.Close()
	cf, err := os.Create(*copyPath)
	if err != nil {
		return err
	}
	defer cf.Close()
	uw, cw := bufio.NewWriterSize(uf, 1<<20), bufio.NewWriterSize(cf, 1<<20)
	// A minute back, so that no line is "in the future" whatever the clocks.
	newest := time.Now().In(loc).Add(-time.Minute).Truncate(time.Second)
	var perm []int
	if *shuffle {
		perm = rand.New(rand.NewPCG(1, 2)).Perm(*rows)
	}
	var ub, cb []byte
	for k := range *rows {
		i := *start + k
		if perm != nil {
			i = *start + perm[k]
		}
		phone := 905_000_000_000 + (int64(i)*7919+12345)%1_000_000_000
		at := newest.Add(-time.Duration(int64(i)*37%86_000) * time.Second)
		status := "ONAY"
		if i%3 == 0 {
			status = "RET"
		}
		p := platforms[i%len(platforms)]
		ub = strconv.AppendInt(ub[:0], phone, 10)
		ub = append(ub, "; "+p.platform+"; "+status+"; "...)
		ub = at.AppendFormat(ub, "02.01.2006 15:04:05")
		ub = append(ub, "; user"...)
		ub = strconv.AppendInt(ub, int64(i), 10)
		ub = append(ub, '\n')
		cb = append(cb[:0], "1\t+"...)
		cb = strconv.AppendInt(cb, phone, 10)
		cb = append(cb, "\tBIREYSEL\tMESAJ\t"+status+"\t"...)
		cb = at.AppendFormat(cb, "2006-01-02 15:04:05-07:00")
		cb = append(cb, "\t"+p.source+"\tuser"...)
		cb = strconv.AppendInt(cb, int64(i), 10)
		cb = append(cb, '\n')
		if _, err := uw.Write(ub); err != nil {
			return err
		}
		if _, err := cw.Write(cb); err != nil {
			return err
		}
	}
	if err := uw.Flush(); err != nil {
		return err
	}
	if err := cw.Flush(); err != nil {
		return err
	}
	if err := uf.Close(); err != nil {
		return err
	}
	return cf.Close()
}

// cmdFreshDB drops (closing its sessions) and creates a database.
func cmdFreshDB(args []string) error {
	fs := flag.NewFlagSet("freshdb", flag.ExitOnError)
	admin := fs.String("url", "", "URL of a database on the server, as a user who may CREATE DATABASE")
	name := fs.String("name", "", "database to (re)create")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	if *admin == "" || *name == "" {
		return errors.New("-url and -name are required")
	}
	db, err := sql.Open("postgres", *admin)
	if err != nil {
		return err
	}
	defer db.Close()
	q := pq.QuoteIdentifier(*name)
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + q + " WITH (FORCE)", "CREATE DATABASE " + q + " TEMPLATE template0"} {
		if _, err := db.Exec(stmt); err != nil {
			return err
		}
	}
	u, err := url.Parse(*admin)
	if err != nil {
		return errors.New("-url: not a URL") // never echo it: it may hold a password
	}
	u.Path, u.RawPath = "/"+*name, ""
	fmt.Println(u.String())
	return nil
}

// cmdSQL runs each statement; a statement that returns rows has the first
// column of each printed, one a line.
func cmdSQL(args []string) error {
	fs := flag.NewFlagSet("sql", flag.ExitOnError)
	dsn := fs.String("url", "", "database URL")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, stmt := range fs.Args() {
		rows, err := db.Query(stmt)
		if err != nil {
			return err
		}
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			var first sql.NullString
			vals[0] = &first
			for i := 1; i < len(vals); i++ {
				vals[i] = new(any)
			}
			if err := rows.Scan(vals...); err != nil {
				return err
			}
			fmt.Println(first.String)
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// copyData is lib/pq's COPY statement: it takes ready lines of COPY input.
type copyData interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// cmdCopy is the yardstick: the COPY input streamed line by line, untouched, into a
// fresh table like consents (same columns, defaults, checks and indexes), in
// one transaction. It prints the seconds from BEGIN to the end of COMMIT.
func cmdCopy(args []string) error {
	fs := flag.NewFlagSet("copy", flag.ExitOnError)
	dsn := fs.String("url", "", "database URL (its schema must exist: run iys-sync install there first)")
	copyPath := fs.String("copy", "", "the COPY input written by gen")
	keyOnly := fs.Bool("key-only", false, "COPY into a table with only the key's unique index (no other index, check or default): the physical bound")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	ctx := context.Background()
	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	create := "CREATE TABLE bare (LIKE consents INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
	if *keyOnly {
		create = `CREATE TABLE bare (connector_id bigint, recipient text, recipient_type text, type text, status text,
			consent_date timestamptz, source text, external_id text, UNIQUE (connector_id, recipient, recipient_type, type))`
	}
	for _, stmt := range []string{"DROP TABLE IF EXISTS bare", create} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	conn.ExecContext(ctx, "CHECKPOINT") //nolint:errcheck // needs a superuser (or pg_checkpoint): best effort
	f, err := os.Open(*copyPath)
	if err != nil {
		return err
	}
	defer f.Close()

	start := time.Now()
	var n int64
	err = conn.Raw(func(dc any) error {
		ex, ok := dc.(driver.ExecerContext)
		prep, ok2 := dc.(driver.ConnPrepareContext)
		if !ok || !ok2 {
			return errors.New("the driver connection cannot exec or prepare")
		}
		if _, err := ex.ExecContext(ctx, "BEGIN", nil); err != nil {
			return err
		}
		st, err := prep.PrepareContext(ctx, `COPY bare (connector_id, recipient, recipient_type, type, status, consent_date, source, external_id) FROM STDIN`)
		if err != nil {
			return err
		}
		cp, ok := st.(copyData)
		if !ok {
			st.Close()
			return errors.New("lib/pq's COPY statement has no CopyData")
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if _, err := cp.CopyData(ctx, sc.Text()); err != nil {
				st.Close()
				return err
			}
			n++
		}
		if err := sc.Err(); err != nil {
			st.Close()
			return err
		}
		//lint:ignore SA1019 lib/pq ends a COPY with driver.Stmt's Exec(nil); there is no context form
		if _, err := st.Exec(nil); err != nil {
			st.Close()
			return err
		}
		if err := st.Close(); err != nil {
			return err
		}
		_, err = ex.ExecContext(ctx, "COMMIT", nil)
		return err
	})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	var got int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM bare").Scan(&got); err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("bare holds %d rows, the COPY input has %d", got, n)
	}
	fmt.Printf("%.3f\n", secs)
	return nil
}
