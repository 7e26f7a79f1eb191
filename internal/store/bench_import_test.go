package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// BenchmarkImport1M measures ImportFile on generated SMS rows against a bare
// COPY of the same rows into a table with the same columns and indexes, in
// the same run, and this process's peak memory. scripts/bench-import.sh
// drives it. Knobs: IYS_BENCH_ROWS (1,000,000), IYS_BENCH_ROUNDS (3; the two
// alternate, and the best round of each counts, which damps the noise of a
// busy machine), IYS_BENCH_EXTRA=1 (also time a re-import and an update).
//
// Besides wall time it reports CPU seconds (this process plus the server
// backend, read from /proc when the server is local): on a shared machine
// they say what the work costs when wall time says how busy the machine was.
func BenchmarkImport1M(b *testing.B) {
	n := envInt(b, "IYS_BENCH_ROWS", 1_000_000)
	rounds := envInt(b, "IYS_BENCH_ROUNDS", 3)
	s, _ := newStore(b)
	s.db.SetMaxOpenConns(1) // one connection: its backend is the one we read the CPU of
	c := install(b, s, "B")
	for i := 0; i < b.N; i++ {
		var bare, imp []cost
		for r := range rounds {
			if r%2 == 0 {
				bare = append(bare, benchBareCopy(b, s, c.ID, n))
				imp = append(imp, benchImport(b, s, c.ID, n, 0, true))
			} else {
				imp = append(imp, benchImport(b, s, c.ID, n, 0, true))
				bare = append(bare, benchBareCopy(b, s, c.ID, n))
			}
			b.Logf("round %d: bare COPY %v, ImportFile %v", r+1, bare[r], imp[r])
		}
		bb, bi := best(bare), best(imp)
		b.ReportMetric(bb.wall.Seconds(), "copy-s")
		b.ReportMetric(bi.wall.Seconds(), "import-s")
		b.ReportMetric(bi.wall.Seconds()/bb.wall.Seconds(), "ratio")
		b.Logf("%d rows, best of %d: bare COPY %v, ImportFile %v: wall ratio %.2f",
			n, rounds, bb, bi, bi.wall.Seconds()/bb.wall.Seconds())
		if bb.cpu > 0 {
			b.ReportMetric(bi.cpu.Seconds()/bb.cpu.Seconds(), "cpu-ratio")
			b.Logf("CPU ratio %.2f", bi.cpu.Seconds()/bb.cpu.Seconds())
		}
		if os.Getenv("IYS_BENCH_EXTRA") == "1" {
			same := benchImport(b, s, c.ID, n, 0, false)
			newer := benchImport(b, s, c.ID, n, time.Hour, false)
			b.ReportMetric(same.wall.Seconds(), "reimport-s")
			b.ReportMetric(newer.wall.Seconds(), "update-s")
			b.Logf("the same file again (all unchanged) %v; every row an hour newer (all updated) %v", same, newer)
		}
	}
	rss := peakRSS(b)
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
	b.Logf("peak RSS of this process: %.1f MB", float64(rss)/(1<<20))
}

// cost is one measurement: wall time, and CPU of client plus server backend
// (zero when the backend's CPU cannot be read).
type cost struct{ wall, cpu time.Duration }

func (c cost) String() string {
	if c.cpu == 0 {
		return fmt.Sprintf("%.2fs", c.wall.Seconds())
	}
	return fmt.Sprintf("%.2fs (CPU %.2fs)", c.wall.Seconds(), c.cpu.Seconds())
}

func best(cs []cost) cost {
	b := cs[0]
	for _, c := range cs[1:] {
		if c.wall < b.wall {
			b.wall = c.wall
		}
		if c.cpu < b.cpu {
			b.cpu = c.cpu
		}
	}
	return b
}

// benchRow is row i of the generated file: distinct phones in a scrambled
// order (i*7919 mod 10^9 is a permutation), as a real file would have them.
func benchRow(i int, shift time.Duration) ImportRow {
	st, src := consent.StatusOnay, consent.SourceMesaj
	if i%3 == 0 {
		st = consent.StatusRet
	}
	if i%2 == 0 {
		src = consent.SourceWeb
	}
	base := time.Date(2025, 4, 1, 0, 0, 0, 0, consent.Istanbul)
	return ImportRow{
		Line:          i + 1,
		Recipient:     "+905" + fmt.Sprintf("%09d", (int64(i)*7919+12345)%1_000_000_000),
		RecipientType: consent.Bireysel,
		Type:          consent.TypeMesaj,
		Status:        st,
		ConsentDate:   consent.NewDate(base.Add(time.Duration(i*37%(30*86400))*time.Second + shift)),
		Source:        src,
		ExternalID:    "user" + strconv.Itoa(i),
	}
}

// benchBareCopy is the yardstick: the rows COPYed straight into a fresh copy
// of consents (same columns, defaults, checks, unique and partial indexes).
func benchBareCopy(b *testing.B, s *Store, connID int64, n int) cost {
	ctx := context.Background()
	for _, q := range []string{"DROP TABLE IF EXISTS bare",
		"CREATE TABLE bare (LIKE consents INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"} {
		if _, err := s.db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	m := startMeasure(b, s)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	stmt, err := tx.Prepare("COPY bare (connector_id, recipient, recipient_type, type, status, consent_date, source, external_id) FROM STDIN")
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		r := benchRow(i, 0)
		if _, err := stmt.Exec(connID, r.Recipient, string(r.RecipientType), string(r.Type), string(r.Status),
			r.ConsentDate.Time(), string(r.Source), r.ExternalID); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := stmt.Exec(); err != nil {
		b.Fatal(err)
	}
	if err := stmt.Close(); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return m.stop(b)
}

// benchImport imports the generated file, into an empty consents table when
// fresh is set, else on top of what is there.
func benchImport(b *testing.B, s *Store, connID int64, n int, shift time.Duration, fresh bool) cost {
	if fresh {
		// With the history and the kept counts, or the counts would go on
		// adding up (consent_events refuses a TRUNCATE but a pruning one).
		tx, err := s.db.Begin()
		if err == nil {
			_, err = tx.Exec("SET LOCAL iys_sync.prune = 'on'")
		}
		if err == nil {
			_, err = tx.Exec("TRUNCATE consents, imports, consent_events, consent_counts")
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	src := func(emit func(ImportRow) error) error {
		for i := range n {
			if err := emit(benchRow(i, shift)); err != nil {
				return err
			}
		}
		return nil
	}
	m := startMeasure(b, s)
	res, err := s.ImportFile(context.Background(), connID,
		fixed(ImportMeta{Path: "bench.csv", Channel: "sms", Lines: n, Valid: n}), src, src)
	if err != nil {
		b.Fatal(err)
	}
	c := m.stop(b)
	if res.Rows != n {
		b.Fatalf("imported %d rows, want %d", res.Rows, n)
	}
	return c
}

type measure struct {
	s          *Store
	pid        int
	start      time.Time
	cpu, spcpu time.Duration
}

// startMeasure checkpoints (each measurement starts with no dirty pages of
// the last; it may fail on a server where we are not superuser) and notes
// the clocks.
func startMeasure(b *testing.B, s *Store) *measure {
	s.db.Exec("CHECKPOINT") //nolint:errcheck // see above
	m := &measure{s: s}
	if err := s.db.Get(&m.pid, "SELECT pg_backend_pid()"); err != nil {
		b.Fatal(err)
	}
	m.cpu, m.spcpu = selfCPU(), backendCPU(m.pid)
	m.start = time.Now()
	return m
}

func (m *measure) stop(b *testing.B) cost {
	c := cost{wall: time.Since(m.start)}
	var pid int
	if err := m.s.db.Get(&pid, "SELECT pg_backend_pid()"); err != nil {
		b.Fatal(err)
	}
	if pid == m.pid && m.spcpu >= 0 {
		c.cpu = selfCPU() - m.cpu + backendCPU(pid) - m.spcpu
	}
	return c
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) //nolint:errcheck // cannot fail for SELF
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the server process's user+system time, or -1 when it is not
// on this machine (or not readable).
func backendCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // field 3 onwards
	if len(f) < 13 || !strings.Contains(s, "postgres") {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// peakRSS reads VmHWM, the process's peak resident memory.
func peakRSS(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
