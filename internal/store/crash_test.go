package store

import (
	"bufio"
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// The child half of TestImportKilledMidCopy, chosen by these variables.
const (
	crashChildEnv = "STORE_CRASH_CHILD"
	crashURLEnv   = "STORE_CRASH_URL"
	crashConnEnv  = "STORE_CRASH_CONNECTOR"
	crashMarker   = "COPYING"
	crashAppName  = "iys_crash_child"
)

// TestImportKilledMidCopy kills a process in the middle of a large import
// and checks that the database holds exactly what it held before.
func TestImportKilledMidCopy(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild(t)
		return
	}
	s, url := newStore(t)
	c := install(t, s, "B")
	var rows []ImportRow
	for i := range 200 {
		rows = append(rows, sms(t, i+1, fmt.Sprintf("+90533%07d", i), consent.StatusOnay, "15.05.2025 14:00:00"))
	}
	importRows(t, s, c.ID, rows...)
	execSQL(t, s, "UPDATE consents SET state = 'synced', outcome = 'accepted', synced_at = now() WHERE id % 3 = 0")
	before := fingerprint(t, s)

	cmd := exec.Command(os.Args[0], "-test.run=^TestImportKilledMidCopy$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1",
		crashURLEnv+"="+withParam(t, url, "application_name", crashAppName), crashConnEnv+"="+strconv.FormatInt(c.ID, 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	marked := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == crashMarker {
				marked <- sc.Text()
			}
		}
		close(marked)
	}()
	select {
	case _, ok := <-marked:
		if !ok {
			t.Fatalf("child ended before copying; stderr:\n%s", stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("child never started copying")
	}
	// The server must be inside the COPY, with rows already received.
	waitFor(t, "the server to receive the child's rows", func() bool {
		return count(t, s, `SELECT count(*) FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid)
			WHERE a.application_name = $1 AND a.datname = current_database() AND p.tuples_processed > 0`, crashAppName) == 1
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed on purpose
	waitFor(t, "the server to end the child's session", func() bool {
		return count(t, s, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", crashAppName) == 0
	})

	if after := fingerprint(t, s); after != before {
		t.Fatalf("the killed import changed the database:\nbefore %s\nafter  %s", before, after)
	}
	// And the next import goes through.
	if res := importRows(t, s, c.ID, sms(t, 1, "+905339999999", consent.StatusOnay, "15.05.2025 14:00:00")); res.Inserted != 1 {
		t.Fatalf("import after the crash = %+v", res)
	}
}

// crashChild imports an endless, slow file and says when it is copying.
func crashChild(t *testing.T) {
	s, err := Open(context.Background(), os.Getenv(crashURLEnv))
	if err != nil {
		t.Fatal(err)
	}
	connID, _ := strconv.ParseInt(os.Getenv(crashConnEnv), 10, 64)
	src := func(emit func(ImportRow) error) error {
		for i := 0; ; i++ {
			// Newer consents for the stored records, then new ones: either
			// would show if any of it landed.
			if err := emit(sms(t, i+1, fmt.Sprintf("+90533%07d", i), consent.StatusRet, "16.05.2025 14:00:00")); err != nil {
				return err
			}
			if i == 20000 { // well past lib/pq's 64 KiB buffer: rows are on the server
				fmt.Println(crashMarker)
			}
			if i > 20000 && i%100 == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	_, err = s.ImportFile(context.Background(), connID, fixed(ImportMeta{Path: "endless.txt", Channel: "sms"}), src, nil)
	t.Fatalf("the endless import returned: %v", err)
}

// fingerprint sums up the consents and imports tables.
func fingerprint(t *testing.T, s *Store) string {
	t.Helper()
	var fp string
	err := s.db.Get(&fp, `SELECT (SELECT count(*) FROM consents) || ' ' ||
		(SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY id), '')) FROM consents c) || ' ' ||
		(SELECT count(*) FROM imports)`)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func withParam(t *testing.T, raw, k, v string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
