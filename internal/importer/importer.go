// Package importer reads upload files into the store: the line rules of
// internal/upload and the newest-wins merge of internal/store, one
// transaction a file. The HTTP intake will feed the same merge.
package importer

import (
	"context"
	"fmt"
	"io"
	"os"

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
	// so that a long file's errors show while it is read.
	OnReject func(*upload.Rejection)
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

// Warnings count valid lines that İYS may still refuse or that lost.
type Warnings struct {
	UnknownPlatform        int `json:"unknownPlatform"`
	OlderThan3BusinessDays int `json:"olderThan3BusinessDays"`
	Superseded             int `json:"superseded"`
}

// Importer imports the files of one command, in order: later files win ties.
type Importer struct {
	store       *store.Store
	connectorID int64
	opts        Options
	types       []consent.Type
	tracker     *upload.Tracker // dry runs only: the database decides otherwise
}

// New checks the options. st may be nil only for a dry run.
func New(st *store.Store, connectorID int64, opts Options) (*Importer, error) {
	if err := opts.Upload.Validate(); err != nil {
		return nil, err
	}
	if _, err := consent.ParseRecipientType(string(opts.RecipientType)); err != nil {
		return nil, err
	}
	if opts.Upload.Now.IsZero() {
		opts.Upload.Now = consent.Now() // one moment for every file of the command
	}
	im := &Importer{store: st, connectorID: connectorID, opts: opts, types: opts.Upload.ConsentTypes()}
	if opts.DryRun {
		im.tracker = upload.NewTracker()
	} else if st == nil {
		return nil, fmt.Errorf("an import that is not a dry run needs the database")
	}
	return im, nil
}

// File imports one file whole or not at all. An error means the file was
// refused whole (its summary says why) and nothing of it was stored.
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
	var r io.Reader = f
	if im.opts.Progress != nil {
		if fi, err := f.Stat(); err == nil {
			r = &progressReader{r: f, path: path, size: fi.Size(), report: im.opts.Progress}
		}
	}
	sc := upload.NewScanner(r, path, im.opts.Upload)
	if im.opts.DryRun {
		return im.dryRun(sc, sum)
	}
	res, err := im.store.ImportFile(ctx, im.connectorID, func() store.ImportMeta {
		c := sc.Counts()
		return store.ImportMeta{Path: path, Channel: sum.Channel, Lines: c.Lines, Blank: c.Blank, Valid: c.Valid, Rejected: c.Rejected}
	}, func(emit func(store.ImportRow) error) error {
		for sc.Scan() {
			l, rej := sc.Line()
			if rej != nil {
				im.reject(sum, rej)
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
	})
	im.count(sc.Counts(), sum)
	if err != nil {
		return err
	}
	sum.Result = &res
	sum.Warnings.Superseded = res.SupersededLines
	sum.Imported = sum.Valid
	return nil
}

func (im *Importer) dryRun(sc *upload.Scanner, sum *FileSummary) error {
	im.tracker.StartFile()
	for sc.Scan() {
		l, rej := sc.Line()
		if rej != nil {
			im.reject(sum, rej)
			continue
		}
		im.tracker.Observe(l, im.opts.RecipientType, im.types)
	}
	im.count(sc.Counts(), sum)
	sum.Warnings.Superseded = im.tracker.Superseded()
	return sc.Err()
}

func (im *Importer) reject(sum *FileSummary, rej *upload.Rejection) {
	r := *rej
	sum.Errors = append(sum.Errors, &r)
	if im.opts.OnReject != nil {
		im.opts.OnReject(&r)
	}
}

func (im *Importer) count(c upload.Counts, sum *FileSummary) {
	sum.Lines, sum.Blank, sum.Valid, sum.Rejected = c.Lines, c.Blank, c.Valid, c.Rejected
	sum.Warnings.UnknownPlatform = c.UnknownPlatform
	sum.Warnings.OlderThan3BusinessDays = c.OlderThan3BusinessDays
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
