package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// ImportRow is one consent read from an upload file. A line may give several
// rows (an SMS line imported as MESAJ,ARAMA gives two).
type ImportRow struct {
	Line          int // 1-based line of the file
	Recipient     string
	RecipientType consent.RecipientType
	Type          consent.Type
	Status        consent.Status
	ConsentDate   consent.Date
	Source        consent.Source
	ExternalID    string
}

// RowSource emits the rows of one file in order, from one goroutine;
// returning an error aborts the import (nothing is written). emit fails once
// the import cannot go on; the source should then return that error.
type RowSource func(emit func(ImportRow) error) error

// ImportMeta describes the file for the imports audit row. Lines must equal
// Blank + Valid + Rejected, and Valid the number of distinct lines emitted.
// ImportFile asks for it once the rows are read, since a streaming reader
// knows its counts only at the end.
type ImportMeta struct {
	Path     string
	Channel  string // "email" or "sms"
	Lines    int
	Blank    int
	Valid    int
	Rejected int
}

// ImportResult counts what one file did. Inserted + Updated + Unchanged is
// the number of distinct records the file names; Unchanged ones were
// identical to the stored record or older than it.
type ImportResult struct {
	Rows            int
	Inserted        int
	Updated         int
	Unchanged       int
	SupersededLines int // lines that lost to a later line or to a newer stored record
}

// importRow is an imports row: what one file (or intake request, or read of
// a user-table source, per channel) did; the table's row type (see rowTypes).
type importRow struct {
	ID          int64     `db:"id"`
	ConnectorID int64     `db:"connector_id"`
	Path        string    `db:"path"`
	Channel     string    `db:"channel"` // "email" or "sms"
	Lines       int       `db:"lines"`
	Blank       int       `db:"blank"`
	Valid       int       `db:"valid"`
	Rejected    int       `db:"rejected"`
	Superseded  int       `db:"superseded"`
	Rows        int       `db:"rows"`
	Inserted    int       `db:"inserted"`
	Updated     int       `db:"updated"`
	Unchanged   int       `db:"unchanged"`
	ImportedAt  time.Time `db:"imported_at"`
}

// The import's statements, of sql/connectors.sql, sql/staging.sql and sql/imports.sql.
var (
	lockConnectorChannels      = stmt("LockConnectorChannels") // what a foreign key check would take
	lockConnectorChannelsAlone = stmt("LockConnectorChannelsAlone")
	hasRecords                 = stmt("HasRecords")
	copiedRecordsEvents        = stmt("CopiedRecordsEvents")
	copiedRecordsCounted       = stmt("CopiedRecordsCounted")
	createStaging              = stmt("CreateStaging")
	insertImport               = stmt("InsertImport")
	nextImportID               = stmt("NextImportID")
)

// reserveImportID takes the id of the transaction's (first) imports row
// before the merge, so that the merge's events can name it, and tells the
// transaction's time (now(), the events' time).
func reserveImportID(ctx context.Context, tx *sqlx.Tx) (int64, time.Time, error) {
	var id int64
	var at time.Time
	if err := tx.QueryRowContext(ctx, nextImportID).Scan(&id, &at); err != nil {
		return 0, time.Time{}, fmt.Errorf("reserve import id: %w", err)
	}
	return id, at, nil
}

// recordImport writes the imports row r, with id r.ID if not 0 (its time is the table's).
func recordImport(ctx context.Context, tx *sqlx.Tx, r importRow) error {
	if _, err := tx.ExecContext(ctx, insertImport, r.ConnectorID, r.Path, r.Channel, r.Lines, r.Blank, r.Valid,
		r.Rejected, r.Superseded, r.Rows, r.Inserted, r.Updated, r.Unchanged, r.ID); err != nil {
		return fmt.Errorf("record import: %w", err)
	}
	return nil
}

// importPath says which of the import's paths a store may take.
type importPath int

const (
	allPaths   importPath = iota // a first file is copied into the records (copyFirstFile)
	mergeOnly                    // every import merges from the staging table, fast path first
	upsertOnly                   // every import merges by the upsert alone
)

// importWorkMem bounds each sort and hash of the merge, for this transaction
// only. Measured at a million rows, 4 MB to 512 MB import equally fast (the
// sort spills, and spilling is cheap next to writing the records), so this
// stays modest: enough to keep the hash join against a large connector's
// records in few batches.
const importWorkMem = "SET LOCAL work_mem = '64MB'"

// ImportFile stores one file's rows as pending consents of the connector, in
// one transaction: all of it or nothing. Per record the latest consent date
// wins, then the later line; a newer consent makes the record pending again
// whatever its state, with its version bumped. Rows stream through COPY into
// a temporary table, so memory does not grow with the file. meta is called
// before src runs, for the path alone (each row's origin names the file),
// and after src has returned, for the counts.
//
// again, if not nil, gives src's rows once more, in the same order and
// reporting nothing (a file read again). The connector's first file is then
// COPYed straight into its records, a third faster (README's Performance);
// should the file hold a key twice, again feeds the temporary table.
func (s *Store) ImportFile(ctx context.Context, connectorID int64, meta func() ImportMeta, src, again RowSource) (ImportResult, error) {
	res, err := s.importFile(ctx, connectorID, meta, src, again)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import file: %w", err)
	}
	return res, nil
}

// beginImport opens the transaction of every import (files, the intake,
// the user-table source) on a connection of its own (the staging COPY
// borrows its driver connection, see rawConn): it locks the connector FOR
// KEY SHARE, what a foreign key check would take (consents has none, see
// 0001_init.sql), so a concurrent delete of the connector waits; reads its
// channels; and makes the staging table. The caller rolls back or commits,
// then closes the connection.
// lock is the statement that locks it: lockConnectorChannels, or
// lockConnectorChannelsAlone for a first file's copy.
func (s *Store) beginImport(ctx context.Context, connectorID int64, lock string) (*sqlx.Conn, *sqlx.Tx, []string, error) {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	tx, channels, err := beginImportOn(ctx, conn, connectorID, lock)
	if err != nil {
		conn.Close() //nolint:errcheck // the error that matters is err
		return nil, nil, nil, err
	}
	return conn, tx, channels, nil
}

// beginImportOn is beginImport on conn, one the caller holds (the
// user-table source's, whose session holds its spool).
func beginImportOn(ctx context.Context, conn *sqlx.Conn, connectorID int64, lock string) (*sqlx.Tx, []string, error) {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	var channels []string
	err = tx.QueryRowContext(ctx, lock, connectorID).Scan((*stringArray)(&channels))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("connector id %d: %w", connectorID, ErrNoConnector)
	}
	for _, q := range []string{importWorkMem, createStaging} {
		if err == nil {
			_, err = tx.ExecContext(ctx, q)
		}
	}
	if err != nil {
		tx.Rollback() //nolint:errcheck // the error that matters is err
		return nil, nil, err
	}
	return tx, channels, nil
}

// recordChannelImports writes one imports audit row per channel that a
// request held (the intake and the user-table source mix email and SMS;
// the table keeps one channel a row).
// The first row written takes id importID (see reserveImportID).
func recordChannelImports(ctx context.Context, tx *sqlx.Tx, connectorID, importID int64, path string, channels []IntakeChannel, per map[string]*ImportResult) error {
	for _, c := range channels {
		if c.Channel != "email" && c.Channel != "sms" {
			return fmt.Errorf("channel %q: want email or sms", c.Channel)
		}
		if c.Valid+c.Rejected == 0 {
			continue
		}
		p := per[c.Channel]
		if p == nil {
			p = &ImportResult{}
		}
		if err := recordImport(ctx, tx, importRow{ID: importID, ConnectorID: connectorID, Path: path, Channel: c.Channel,
			Lines: c.Valid + c.Rejected, Valid: c.Valid, Rejected: c.Rejected, Superseded: p.SupersededLines,
			Rows: p.Rows, Inserted: p.Inserted, Updated: p.Updated, Unchanged: p.Unchanged}); err != nil {
			return err
		}
		importID = 0
	}
	return nil
}

// untimed lifts the session's statement_timeout (see sessionDefaults) for a
// transaction whose COPY lasts as long as its input.
const untimed = "SET LOCAL statement_timeout = 0"

func (s *Store) importFile(ctx context.Context, connectorID int64, metaFn func() ImportMeta, src, again RowSource) (ImportResult, error) {
	// A first file is copied only with the connector locked against every
	// other writer of its records; without records, none is waiting to
	// write. Checked again under the lock.
	first := false
	if again != nil && s.path == allPaths {
		var err error
		if first, err = noRecords(ctx, s.db, connectorID); err != nil {
			return ImportResult{}, err
		}
	}
	lock := lockConnectorChannels
	if first {
		lock = lockConnectorChannelsAlone
	}
	conn, tx, channels, err := s.beginImport(ctx, connectorID, lock)
	if err != nil {
		return ImportResult{}, err
	}
	defer conn.Close()
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, untimed); err != nil {
		return ImportResult{}, err
	}
	importID, at, err := reserveImportID(ctx, tx)
	if err != nil {
		return ImportResult{}, err
	}
	if first {
		if first, err = noRecords(ctx, tx, connectorID); err != nil {
			return ImportResult{}, err
		}
	}
	// The path is known before the counts (see ImportFile).
	o := origin{kind: "file", prefix: "file:" + filepath.Base(metaFn().Path), importID: importID}
	var res ImportResult
	var lines int
	if first {
		res.Rows, lines, err = copyFirstFile(ctx, conn, tx, connectorID, channels, src, again, o.stamp(at))
		res.Inserted = res.Rows
		if errors.Is(err, errKeyTwice) {
			first, src = false, again // into the staging table
		} else if err != nil {
			return ImportResult{}, err
		}
	}
	if !first {
		res.Rows, lines, err = copyRows(ctx, conn, copyStaging, channels, src, stagedWith(o.stamp(at)))
		if err != nil {
			return ImportResult{}, err
		}
	}
	meta := metaFn()
	if err := meta.check(lines); err != nil {
		return ImportResult{}, fmt.Errorf("%s: %w", meta.Path, err)
	}
	if !first {
		m, err := merge(ctx, tx.Tx, connectorID, s.path != upsertOnly, o)
		if err != nil {
			return ImportResult{}, err
		}
		res = ImportResult{Rows: res.Rows, Inserted: m.inserted, Updated: m.updated,
			Unchanged: m.keys - m.inserted - m.updated, SupersededLines: m.superseded}
	}
	if err := recordImport(ctx, tx, importRow{ID: importID, ConnectorID: connectorID, Path: meta.Path, Channel: meta.Channel,
		Lines: meta.Lines, Blank: meta.Blank, Valid: meta.Valid, Rejected: meta.Rejected,
		Superseded: res.SupersededLines, Rows: res.Rows, Inserted: res.Inserted, Updated: res.Updated,
		Unchanged: res.Unchanged}); err != nil {
		return ImportResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// noRecords tells whether the connector has no records yet.
func noRecords(ctx context.Context, q sqlx.QueryerContext, connectorID int64) (bool, error) {
	var has bool
	if err := q.QueryRowxContext(ctx, hasRecords, connectorID).Scan(&has); err != nil {
		return false, fmt.Errorf("has records: %w", err)
	}
	return !has, nil
}

// copiedHour is a UTC hour of consent dates (its start, in seconds since
// 1970), HS_2015's apart: a copied file's kept counts are counted in these
// (see CopiedRecordsCounted).
type copiedHour struct {
	start  int64
	hs2015 bool
}

// errKeyTwice: a first file holds a key twice, and goes through the staging table.
var errKeyTwice = errors.New("a key twice")

// keyTwice says errKeyTwice for the consents key refusing a row of a
// first file's COPY, and passes any other error on as it is.
func keyTwice(err error) error {
	if pq.As(err, pqerror.UniqueViolation) != nil {
		return fmt.Errorf("%w (%w)", errKeyTwice, err)
	}
	return err
}

// maxScannedKeys bounds scanKeysTwice's set to 16 MB, so that an import's
// memory stays flat however long its file (a million-line file peaks at
// 63-69 MB with the scan, 24-29 MB without): past it the scan stops, and a
// key twice further on is found by the COPY itself.
const maxScannedKeys = 1 << 20

// errScanStop ends scanKeysTwice's read.
var errScanStop = errors.New("the scan stopped")

// scanKeysTwice reads again's rows in a goroutine of its own while a first
// file is COPYed, and sets twice at the first key it meets twice: the COPY
// then stops at once, not when it reaches the second (the scan reads a
// million rows in well under a second, the COPY takes about eight). stop
// ends the scan; wait waits for its end.
func scanKeysTwice(again RowSource, twice, stop *atomic.Bool) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := newKeySet()
		// Its error is no matter: the scan is a hint, the COPY checks every key.
		_ = again(func(r ImportRow) error {
			switch {
			case stop.Load() || seen.n >= maxScannedKeys:
				return errScanStop
			case seen.add(r):
				twice.Store(true)
				return errScanStop
			}
			return nil
		})
	}()
	return func() { <-done }
}

// copyFirstFile COPYs the rows of a connector's first file straight into
// its records (CopyRecords), then writes their events and counts as the
// merge would have: every row makes a record, with the origin and first
// event of the fast path's. That holds only if no key comes twice: again's
// rows are scanned for one meanwhile (scanKeysTwice), the consents key
// refuses one the scan did not reach, and the copy is then rolled back
// (errKeyTwice), src read to its end all the same. The connector must have
// no records and be locked against other writers (lockConnectorChannelsAlone):
// then nobody waits on the COPY's new keys, taken in the file's order, not
// in key order as other writers take them, and its records are all the
// COPY's.
func copyFirstFile(ctx context.Context, conn rawConn, tx *sqlx.Tx, connectorID int64, channels []string, src, again RowSource, st *eventStamp) (rows, lines int, err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT first_file"); err != nil {
		return 0, 0, err
	}
	var twice, stop atomic.Bool
	wait := scanKeysTwice(again, &twice, &stop)
	hours := map[copiedHour]int64{}
	rows, lines, err = copyRows(ctx, conn, copyRecords, channels, src, func(w *copyWriter, _ int, r ImportRow) error {
		if twice.Load() {
			return errKeyTwice
		}
		hours[copiedHour{r.ConsentDate.Time().Truncate(time.Hour).Unix(), r.Source == consent.Source2015}]++
		return keyTwice(w.record(connectorID, r, st))
	})
	stop.Store(true)
	wait()
	if errors.Is(keyTwice(err), errKeyTwice) {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT first_file"); err != nil {
			return 0, 0, err
		}
		return 0, 0, errKeyTwice
	}
	if err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, copiedRecordsEvents, connectorID, st.kind, st.importID); err != nil {
		return 0, 0, fmt.Errorf("copied records' events: %w", err)
	}
	var starts, ns []int64
	var hs2015 []bool
	for h, n := range hours {
		starts, ns, hs2015 = append(starts, h.start), append(ns, n), append(hs2015, h.hs2015)
	}
	if _, err := tx.ExecContext(ctx, copiedRecordsCounted, connectorID, pq.Array(starts), pq.Array(ns), pq.Array(hs2015)); err != nil {
		return 0, 0, fmt.Errorf("copied records' counts: %w", err)
	}
	return rows, lines, nil
}

// stringArray scans a text[] into a []string.
type stringArray []string

func (a *stringArray) Scan(src any) error { return (*pq.StringArray)(a).Scan(src) }

// check holds the audit row to the file's arithmetic.
func (m ImportMeta) check(linesEmitted int) error {
	switch {
	case m.Channel != "email" && m.Channel != "sms":
		return fmt.Errorf("channel %q: want email or sms", m.Channel)
	case m.Lines != m.Blank+m.Valid+m.Rejected:
		return fmt.Errorf("lines (%d) must equal blank + valid + rejected (%d + %d + %d)",
			m.Lines, m.Blank, m.Valid, m.Rejected)
	case m.Valid != linesEmitted:
		return fmt.Errorf("the rows came from %d distinct lines, but the file has %d valid lines", linesEmitted, m.Valid)
	}
	return nil
}

// checkRow refuses rows the merge would store wrongly; the upload parser has
// already validated them, so a failure here is a caller's bug.
func checkRow(r ImportRow, prevLine int, channels []string) error {
	at := "line " + strconv.Itoa(r.Line)
	switch {
	case r.Line < 1:
		return fmt.Errorf("%s: line numbers start at 1", at)
	case r.Line < prevLine:
		return fmt.Errorf("%s: rows must come in line order (line %d came before)", at, prevLine)
	case r.Recipient == "":
		return fmt.Errorf("%s: empty recipient", at)
	case r.RecipientType != consent.Bireysel && r.RecipientType != consent.Tacir:
		return fmt.Errorf("%s: recipient type %q", at, r.RecipientType)
	case r.Status != consent.StatusOnay && r.Status != consent.StatusRet:
		return fmt.Errorf("%s: status %q", at, r.Status)
	case r.ConsentDate.IsZero():
		return fmt.Errorf("%s: no consent date", at)
	case r.Source == "":
		return fmt.Errorf("%s: no source", at)
	case !slices.Contains(channels, string(r.Type)):
		return fmt.Errorf("%s: type %q is not a channel of this connector (%v)", at, r.Type, channels)
	}
	return nil
}
