// Package importer reads upload files into the store: the line rules of
// internal/upload and the newest-wins merge of internal/store, one
// transaction a file. The HTTP intake will feed the same merge.
package importer

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// Options says how to read and where to store one command's files.
type Options struct {
	Upload        upload.Options
	RecipientType consent.RecipientType
	// DryRun validates only: no database, and Imported stays 0.
	DryRun bool
	// OnReject, when set, hears of each rejected line as soon as it is found,
	// so that a long file's errors show while it is read. An error from it
	// (the report could not be written) stops the file, which is rolled back.
	OnReject func(*upload.Rejection) error
	// Progress, when set, hears how many bytes of the file were read.
	Progress func(path string, read, size int64)
}

// FileSummary is one file's entry of the import --json summary.
type FileSummary struct {
	Path     string              `json:"path"`
	Channel  string              `json:"channel"`
	Lines    int                 `json:"lines"`
	Blank    int                 `json:"blank"`
	Valid    int                 `json:"valid"`
	Rejected int                 `json:"rejected"`
	Imported int                 `json:"imported"`
	Errors   []*upload.Rejection `json:"errors"`
	Warnings Warnings            `json:"warnings"`
	Refused  string              `json:"refused,omitempty"` // why the whole file was refused
	Result   *store.ImportResult `json:"-"`
}

// Warnings count valid lines that İYS may still refuse, that lost, or whose
// number may lack its country code.
type Warnings struct {
	UnknownPlatform         int `json:"unknownPlatform"`
	OlderThan3BusinessDays  int `json:"olderThan3BusinessDays"`
	Superseded              int `json:"superseded"`
	MaybeMissingCountryCode int `json:"maybeMissingCountryCode"`
}

// Importer imports the files of one command, in order: later files win ties.
type Importer struct {
	store       *store.Store
	connectorID int64
	opts        Options
	types       []consent.Type
	tracker     *upload.Tracker // dry runs only: the database decides otherwise
}

// New checks the options. The files go to connector c in st: its default
// source, and its recipient type unless opts give one, fill in what a line
// leaves out, and it must sync every type the files hold. A dry run has no
// connector (c and st nil): its recipients are BIREYSEL unless opts say
// otherwise.
func New(st *store.Store, c *store.Connector, opts Options) (*Importer, error) {
	if err := opts.Upload.Validate(); err != nil {
		return nil, err
	}
	types := opts.Upload.ConsentTypes()
	var connectorID int64
	switch {
	case opts.DryRun:
		if opts.RecipientType == "" {
			opts.RecipientType = consent.Bireysel
		}
	case st == nil || c == nil:
		return nil, fmt.Errorf("an import that is not a dry run needs the database and a connector")
	default:
		for _, t := range types {
			if !slices.Contains(c.Channels, t) {
				chans := consent.JoinTypes(c.Channels, ",")
				return nil, fmt.Errorf("connector %s does not sync %s consents (its channels: %s): add that channel with "+
					"iys-sync install --update --brand-code %s --channels %s,%s", c.BrandCode, t, chans, c.BrandCode, chans, t)
			}
		}
		connectorID = c.ID
		opts.Upload.DefaultSource = c.DefaultSource
		if opts.RecipientType == "" {
			opts.RecipientType = c.RecipientType
		}
	}
	if _, err := consent.ParseRecipientType(string(opts.RecipientType)); err != nil {
		return nil, err
	}
	if opts.Upload.Now.IsZero() {
		opts.Upload.Now = consent.Now() // one moment for every file of the command
	}
	im := &Importer{store: st, connectorID: connectorID, opts: opts, types: types}
	if opts.DryRun {
		im.tracker = upload.NewTracker()
	}
	return im, nil
}

// File imports one file whole or not at all. An error means the file was
// refused whole (its summary says why) and nothing of it was stored. When
// ctx ends while the file is read, the read stops at once (also in a file
// that never ends, /dev/zero, or a pipe that waits) and the file is rolled
// back; when it ends after, the file's merge finishes first.
func (im *Importer) File(ctx context.Context, path string) (FileSummary, error) {
	sum := FileSummary{Path: path, Channel: string(im.opts.Upload.Channel), Errors: []*upload.Rejection{}}
	err := im.file(ctx, path, &sum)
	if err != nil {
		sum.Imported = 0
		sum.Refused = err.Error()
	}
	return sum, err
}

func (im *Importer) file(ctx context.Context, path string, sum *FileSummary) error {
	if err := upload.CheckFileName(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open upload file: %w", err)
	}
	defer f.Close()
	// A read blocked on a pipe ends with the context too (regular files do
	// not block, and take no deadline).
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) }) //nolint:errcheck // see above
	defer stop()
	read := crc32.New(castagnoli) // what was read, to know a second read gives the same
	var r io.Reader = io.TeeReader(contextReader{ctx: ctx, r: f}, read)
	fi, statErr := f.Stat()
	if im.opts.Progress != nil && statErr == nil {
		r = &progressReader{r: r, path: path, size: fi.Size(), report: im.opts.Progress}
	}
	sc := upload.NewScanner(r, path, im.opts.Upload)
	if im.opts.DryRun {
		return im.dryRun(sc, sum)
	}
	// A regular file can be read again (see store.ImportFile), also while the
	// first read goes on; a read after it must find what it found.
	var firstRead atomic.Int64 // the first read's CRC-32C once it has ended, -1 before
	firstRead.Store(-1)
	var again store.RowSource
	if statErr == nil && fi.Mode().IsRegular() {
		again = func(emit func(store.ImportRow) error) error {
			return im.readAgain(ctx, path, &firstRead, emit)
		}
	}
	// The scan stops on ctx (contextReader), and the store then rolls back
	// in line. The store itself is not handed ctx's cancel: database/sql
	// would roll back from its own goroutine while lib/pq's COPY still
	// reads the connection, a data race in lib/pq. So once the lines are
	// read, an interrupt waits for the merge, and the file is stored whole.
	res, err := im.store.ImportFile(context.WithoutCancel(ctx), im.connectorID, func() store.ImportMeta {
		c := sc.Counts()
		return store.ImportMeta{Path: path, Channel: sum.Channel, Lines: c.Lines, Blank: c.Blank, Valid: c.Valid, Rejected: c.Rejected}
	}, func(emit func(store.ImportRow) error) error {
		err := im.emitRows(sc, emit, func(rej *upload.Rejection) error { return im.reject(sum, rej) })
		if err == nil {
			firstRead.Store(int64(read.Sum32()))
		}
		return err
	}, again)
	im.count(sc.Counts(), sum)
	if err != nil {
		return err
	}
	sum.Result = &res
	sum.Warnings.Superseded = res.SupersededLines
	sum.Imported = sum.Valid
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// emitRows emits the rows of sc's valid lines, and hands each rejected line to reject.
func (im *Importer) emitRows(sc *upload.Scanner, emit func(store.ImportRow) error, reject func(*upload.Rejection) error) error {
	for sc.Scan() {
		l, rej := sc.Line()
		if rej != nil {
			if err := reject(rej); err != nil {
				return err
			}
			continue
		}
		for _, t := range im.types {
			if err := emit(store.ImportRow{Line: l.Number, Recipient: l.Recipient, RecipientType: im.opts.RecipientType,
				Type: t, Status: l.Status, ConsentDate: l.ConsentDate, Source: l.Source, ExternalID: l.ExternalID}); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// readAgain emits the rows of the file at path once more, its rejected
// lines already reported, and fails if it no longer holds what the first
// read did, once that has ended (first, its CRC-32C; -1 before).
func (im *Importer) readAgain(ctx context.Context, path string, first *atomic.Int64, emit func(store.ImportRow) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open upload file again: %w", err)
	}
	defer f.Close()
	read := crc32.New(castagnoli)
	sc := upload.NewScanner(io.TeeReader(contextReader{ctx: ctx, r: f}, read), path, im.opts.Upload)
	if err := im.emitRows(sc, emit, func(*upload.Rejection) error { return nil }); err != nil {
		return err
	}
	if want := first.Load(); want >= 0 && int64(read.Sum32()) != want {
		return fmt.Errorf("%s changed while it was imported", path)
	}
	return nil
}

func (im *Importer) dryRun(sc *upload.Scanner, sum *FileSummary) error {
	im.tracker.StartFile()
	for sc.Scan() {
		l, rej := sc.Line()
		if rej != nil {
			if err := im.reject(sum, rej); err != nil {
				im.count(sc.Counts(), sum)
				return err
			}
			continue
		}
		im.tracker.Observe(l, im.opts.RecipientType, im.types)
	}
	im.count(sc.Counts(), sum)
	sum.Warnings.Superseded = im.tracker.Superseded()
	return sc.Err()
}

func (im *Importer) reject(sum *FileSummary, rej *upload.Rejection) error {
	r := *rej
	sum.Errors = append(sum.Errors, &r)
	if im.opts.OnReject != nil {
		return im.opts.OnReject(&r)
	}
	return nil
}

func (im *Importer) count(c upload.Counts, sum *FileSummary) {
	sum.Lines, sum.Blank, sum.Valid, sum.Rejected = c.Lines, c.Blank, c.Valid, c.Rejected
	sum.Warnings.UnknownPlatform = c.UnknownPlatform
	sum.Warnings.OlderThan3BusinessDays = c.OlderThan3BusinessDays
	sum.Warnings.MaybeMissingCountryCode = c.MaybeMissingCountryCode
}

// contextReader ends a read once ctx has ended, with ctx's error: the scan
// of a file stops on SIGTERM wherever it is, also inside a line.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(b)
	if err != nil && c.ctx.Err() != nil {
		return n, c.ctx.Err() // the deadline set when ctx ended, said as what it is
	}
	return n, err
}

// progressReader reports the bytes read so far.
type progressReader struct {
	r      io.Reader
	path   string
	read   int64
	size   int64
	report func(path string, read, size int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	p.report(p.path, p.read, p.size)
	return n, err
}
