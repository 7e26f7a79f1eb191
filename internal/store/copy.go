package store

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// The COPYs of sql/staging.sql.
var (
	copyStaging = stmt("CopyStaging")
	copyRecords = stmt("CopyRecords")
)

// rawConn is a connection whose driver connection can be borrowed
// (*sql.Conn, *sqlx.Conn): the staging COPY writes COPY's text format
// itself, which costs the import a third of the CPU that database/sql's
// Exec per row (its checks, conversions and boxed arguments) did.
type rawConn interface {
	Raw(func(driverConn any) error) error
}

// copyDataStmt is lib/pq's COPY statement: CopyData sends lines as they are.
type copyDataStmt interface {
	CopyData(ctx context.Context, lines string) (driver.Result, error)
}

// copyFlushAt is the size at which the rows gathered are handed to lib/pq,
// which sends them in one CopyData message.
const copyFlushAt = 60 << 10

// copyWriter writes rows in COPY's text format: as staged rows (staged) or
// as records (record).
type copyWriter struct {
	ctx    context.Context
	st     copyDataStmt
	buf    []byte
	hasher eventHasher
}

// errConnLost stands for driver.ErrBadConn met during a COPY: returned from
// conn.Raw's function as it is, it makes database/sql close the connection
// there and then, which waits for the transaction the import holds on it:
// the import hung for good when the server restarted during its COPY
// (TestImportFailsWholeOnServerRestart). Transient knows it.
var errConnLost = errors.New("the connection to the database broke")

// copyStagingRows runs the COPY q (CopyStaging, CopySpool, CopyRecords) on
// conn, and has fill write its rows.
func copyStagingRows(ctx context.Context, conn rawConn, q string, fill func(w *copyWriter) error) error {
	return conn.Raw(func(dc any) error {
		err := copyOn(ctx, dc, q, fill)
		if errors.Is(err, driver.ErrBadConn) {
			return fmt.Errorf("%w (%s)", errConnLost, err) // not ErrBadConn: see errConnLost
		}
		return err
	})
}

// copyOn runs the COPY q on the driver connection dc.
func copyOn(ctx context.Context, dc any, q string, fill func(w *copyWriter) error) error {
	c, ok := dc.(driver.Conn)
	if !ok {
		return fmt.Errorf("driver connection %T cannot prepare", dc)
	}
	st, err := c.Prepare(q)
	if err != nil {
		return err
	}
	defer st.Close()
	cd, ok := st.(copyDataStmt)
	if !ok {
		return fmt.Errorf("driver statement %T cannot send COPY data", st)
	}
	w := &copyWriter{ctx: ctx, st: cd, buf: make([]byte, 0, copyFlushAt+4096)}
	if err := fill(w); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	// An Exec without values ends the COPY and reports the server's verdict.
	//lint:ignore SA1019 lib/pq's COPY statement has no ExecContext
	_, err = st.Exec(nil)
	return err
}

// staged writes row number seq in the order of the staging tables' columns
// (sql/staging.sql's StagingColumns). With st, the hash of the first event of
// a record it would create; without, NULL (the merge makes it).
func (w *copyWriter) staged(seq int, r ImportRow, st *eventStamp) error {
	b := strconv.AppendInt(w.buf, int64(seq), 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, int64(r.Line), 10)
	b = appendValues(b, r)
	if st == nil {
		b = append(b, "\t\\N"...)
	} else {
		b = w.appendFirstHash(b, r, st)
	}
	return w.end(b)
}

// record writes r as the record of connector id it creates, in the order of
// sql/staging.sql's CopyRecords: its values, origin, and first event's seq
// and hash.
func (w *copyWriter) record(id int64, r ImportRow, st *eventStamp) error {
	b := strconv.AppendInt(w.buf, id, 10)
	b = appendValues(b, r)
	b = appendCopyText(append(b, '\t'), st.originOf(r))
	b = append(b, "\t1"...)
	return w.end(w.appendFirstHash(b, r, st))
}

// appendValues appends r's recipient, recipient type, type, status, consent
// date, source and external id, each after a tab.
func appendValues(b []byte, r ImportRow) []byte {
	for _, s := range []string{r.Recipient, string(r.RecipientType), string(r.Type), string(r.Status)} {
		b = appendCopyText(append(b, '\t'), s)
	}
	b = append(b, '\t')
	// UTC to the nanosecond, as lib/pq wrote times: PostgreSQL rounds them.
	b = r.ConsentDate.Time().UTC().AppendFormat(b, "2006-01-02 15:04:05.999999999Z07:00")
	for _, s := range []string{string(r.Source), r.ExternalID} {
		b = appendCopyText(append(b, '\t'), s)
	}
	return b
}

// appendFirstHash appends, after a tab, the hash of the first event of the
// record r creates, as bytea's hex form.
func (w *copyWriter) appendFirstHash(b []byte, r ImportRow, st *eventStamp) []byte {
	hash := w.hasher.sum(nil, st.firstEvent(r))
	b = append(b, `	\\x`...) // its backslash escaped
	return hex.AppendEncode(b, hash[:])
}

// end ends the row in b, flushing when enough has gathered.
func (w *copyWriter) end(b []byte) error {
	w.buf = append(b, '\n')
	if len(w.buf) >= copyFlushAt {
		return w.flush()
	}
	return nil
}

// flush hands the gathered rows to lib/pq, which ends each with a newline.
func (w *copyWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.st.CopyData(w.ctx, string(w.buf[:len(w.buf)-1]))
	w.buf = w.buf[:0]
	return err
}

// appendCopyText appends s escaped for COPY's text format.
func appendCopyText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, c)
		}
	}
	return b
}

// ctxCheckEvery is how many rows go by between context checks during COPY.
const ctxCheckEvery = 4096

// errEmitFailed stands for a failure of emit that the source swallowed.
var errEmitFailed = errors.New("emit failed")

// copyRows streams the source's rows with COPY q (CopyStaging,
// CopyRecords), each written by write; rows go out in messages of about 60
// KiB, so nothing accumulates here. It returns the number of rows and of
// distinct lines. When write says errKeyTwice, nothing more is written but
// the source is still read to its end, so that it has reported every line
// once, and the error returned is write's.
func copyRows(ctx context.Context, conn rawConn, q string, channels []string, src RowSource,
	write func(w *copyWriter, seq int, r ImportRow) error) (rows, lines int, err error) {
	var failed error // the first failure of emit: it stands even if src swallows it
	var keyTwice error
	var srcErr error
	err = copyStagingRows(ctx, conn, q, func(w *copyWriter) error {
		prevLine := 0
		emit := func(r ImportRow) error {
			if failed != nil {
				return failed
			}
			if rows%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					failed = err
					return err
				}
			}
			if err := checkRow(r, prevLine, channels); err != nil {
				failed = err
				return err
			}
			if keyTwice == nil {
				if err := write(w, rows, r); errors.Is(err, errKeyTwice) {
					keyTwice = err
				} else if err != nil {
					failed = fmt.Errorf("copy: %w", err)
					return failed
				}
			}
			if r.Line != prevLine {
				lines++
				prevLine = r.Line
			}
			rows++
			return nil
		}
		srcErr = src(emit)
		if failed != nil || srcErr != nil || keyTwice != nil {
			return errEmitFailed
		}
		return nil
	})
	switch {
	case failed != nil:
		return 0, 0, failed
	case srcErr != nil:
		return 0, 0, fmt.Errorf("read rows: %w", srcErr)
	case keyTwice != nil:
		err = keyTwice
	}
	if err != nil {
		return 0, 0, fmt.Errorf("copy: %w", err)
	}
	return rows, lines, nil
}

// stagedWith writes rows as staged rows stamped by st (copyWriter.staged).
func stagedWith(st *eventStamp) func(w *copyWriter, seq int, r ImportRow) error {
	return func(w *copyWriter, seq int, r ImportRow) error { return w.staged(seq, r, st) }
}
