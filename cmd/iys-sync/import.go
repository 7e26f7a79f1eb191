package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/importer"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// importSummary is the import --json output of docs/cli.md.
type importSummary struct {
	Valid    int                    `json:"valid"`
	Rejected int                    `json:"rejected"`
	Files    []importer.FileSummary `json:"files"`
}

func runImport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "import")
	cf := settingFlags(fs, config.Database)
	brand := fs.String("brand-code", "", "the connector's brand code (not needed with --dry-run)")
	channel := fs.String("channel", "", "email or sms: the format of the files")
	types := fs.String("type", "", "SMS files only: MESAJ (default), ARAMA or MESAJ,ARAMA")
	rtype := fs.String("recipient-type", "", "BIREYSEL or TACIR (default: the connector's, else BIREYSEL)")
	dryRun := fs.Bool("dry-run", false, "validate only: no database, nothing stored")
	jsonOut := fs.Bool("json", false, "print the summary as JSON on stdout")
	errorsOut := fs.String("errors-out", "", "also write each rejected line's report to this file")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("import needs at least one FILE")
	}
	opts, err := importOptions(*channel, *types, *rtype, *dryRun)
	if err != nil {
		return err
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return err
	}
	if !*dryRun {
		if err := checkCode("brand-code", *brand); err != nil {
			return err
		}
	}
	// Opened before anything is imported: a path that cannot be written
	// stops the command before it starts.
	var errFile *errorsOutFile
	if *errorsOut != "" {
		if errFile, err = createErrorsOut(*errorsOut, files); err != nil {
			return err
		}
		defer errFile.abandon()
	}
	bar := newProgressBar(e.stderr)
	opts.OnReject, opts.Progress = reportRejection(e, errFile, bar), bar.update
	im, closeStore, err := openImporter(ctx, cfg, *brand, opts)
	if err != nil {
		return err
	}
	defer closeStore()
	sum, refused, err := importFiles(ctx, e, im, files, bar, *dryRun)
	if err != nil {
		return err
	}
	if errFile != nil {
		if err := errFile.close(); err != nil {
			return fmt.Errorf("%w; the files themselves were %s", err, importedWord(*dryRun))
		}
	}
	if *jsonOut {
		if err := json.NewEncoder(e.stdout).Encode(sum); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	} else {
		printImportSummary(e.stdout, sum, *dryRun)
	}
	switch {
	case refused > 0:
		return fmt.Errorf("%s of %d refused whole", plural(refused, "file", "files"), len(files))
	case sum.Rejected > 0:
		return &partialError{msg: fmt.Sprintf("%s rejected; the %d valid lines were %s", plural(sum.Rejected, "line", "lines"), sum.Valid, importedWord(*dryRun))}
	}
	return nil
}

// importOptions reads the flags that say how to read the files.
func importOptions(channel, types, rtype string, dryRun bool) (importer.Options, error) {
	ch, err := upload.ParseChannel(channel)
	if err != nil {
		return importer.Options{}, usagef("--channel: %v", err)
	}
	opts := importer.Options{Upload: upload.Options{Channel: ch}, DryRun: dryRun}
	if types != "" {
		if opts.Upload.Types, err = upload.ParseTypes(types); err != nil {
			return opts, usagef("--type: %v", err)
		}
	}
	if err := opts.Upload.Validate(); err != nil {
		return opts, usagef("%v", err)
	}
	if rtype != "" {
		if opts.RecipientType, err = consent.ParseRecipientType(rtype); err != nil {
			return opts, usagef("--recipient-type: %v", err)
		}
	}
	return opts, nil
}

// reportRejection says each rejected line on stderr as soon as it is
// found, and in the --errors-out file when there is one.
func reportRejection(e *env, errFile *errorsOutFile, bar *progressBar) func(*upload.Rejection) error {
	return func(r *upload.Rejection) error {
		bar.clear()
		fmt.Fprintln(e.stderr, r.Error())
		if errFile != nil {
			return errFile.write(r.Error())
		}
		return nil
	}
}

// openImporter makes the importer of the brand's connector, or of a dry
// run (no database). The caller calls closeStore when done.
func openImporter(ctx context.Context, cfg config.Config, brand string, opts importer.Options) (im *importer.Importer, closeStore func(), err error) {
	if opts.DryRun {
		im, err := importer.New(nil, nil, opts)
		return im, func() {}, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	c, err := st.Connector(ctx, brand)
	if errors.Is(err, store.ErrNoConnector) {
		err = fmt.Errorf("no connector for brand code %s: run iys-sync install first", brand)
	}
	if err == nil {
		im, err = importer.New(st, &c, opts)
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return im, func() { st.Close() }, nil
}

// importFiles imports the files in order. A file refused whole is said on
// stderr and counted, and the others are still imported; an interrupt or
// a failed write of --errors-out stops the import, saying what it left.
func importFiles(ctx context.Context, e *env, im *importer.Importer, files []string, bar *progressBar, dryRun bool) (importSummary, int, error) {
	sum := importSummary{Files: []importer.FileSummary{}}
	refused := 0
	for i, path := range files {
		fsum, err := im.File(ctx, path)
		bar.clear()
		var wErr *errorsOutError
		switch {
		case err != nil && ctx.Err() != nil:
			return sum, refused, fmt.Errorf("interrupted while importing %s: %s (%v)", path, stoppedAt(files, i, dryRun), err)
		case errors.As(err, &wErr):
			return sum, refused, fmt.Errorf("%w: %s", wErr, stoppedAt(files, i, dryRun))
		case err != nil:
			refused++
			fmt.Fprintf(e.stderr, "%s: refused whole, nothing of it imported: %v\n", path, err)
		}
		sum.Valid += fsum.Valid
		sum.Rejected += fsum.Rejected
		sum.Files = append(sum.Files, fsum)
	}
	return sum, refused, nil
}

// stoppedAt says what the import of files[i], stopped in its middle, left.
func stoppedAt(files []string, i int, dryRun bool) string {
	if dryRun {
		return "the check stopped there (--dry-run: nothing is stored)"
	}
	msg := "it was rolled back, nothing of it is stored"
	if i > 0 {
		msg += fmt.Sprintf("; the %s before it stay imported", plural(i, "file", "files"))
	}
	if rest := len(files) - i - 1; rest > 0 {
		msg += fmt.Sprintf("; %s after it not read", plural(rest, "file", "files"))
	}
	return msg
}

// errorsOutFile is the --errors-out file. Every write is checked: a report
// that cannot be written stops the import, since a user who asked for it
// relies on it to hold every rejected line.
type errorsOutFile struct {
	path string
	f    *os.File
}

// errorsOutError is a failed write of the --errors-out file.
type errorsOutError struct {
	path string
	err  error
}

func (e *errorsOutError) Error() string {
	err := e.err
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is said once
	}
	return fmt.Sprintf("write --errors-out %s: %v", e.path, err)
}

func (e *errorsOutError) Unwrap() error { return e.err }

// createErrorsOut creates (or truncates) path, unless it is one of the
// files to import: truncating it would destroy the input.
func createErrorsOut(path string, files []string) (*errorsOutFile, error) {
	if out, err := os.Stat(path); err == nil {
		for _, f := range files {
			if in, err := os.Stat(f); err == nil && os.SameFile(in, out) {
				return nil, usagef("--errors-out %s is also a file to import: name another file for the report", path)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create --errors-out file: %w", err)
	}
	return &errorsOutFile{path: path, f: f}, nil
}

func (o *errorsOutFile) write(line string) error {
	if _, err := o.f.WriteString(line + "\n"); err != nil {
		return &errorsOutError{path: o.path, err: err}
	}
	return nil
}

// close flushes a regular file to the disk, whose errors (a full disk, a
// lost NFS server) may show only then; pipes and devices take no fsync.
func (o *errorsOutFile) close() error {
	var err error
	if fi, serr := o.f.Stat(); serr == nil && fi.Mode().IsRegular() {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.f = nil
	if err != nil {
		return &errorsOutError{path: o.path, err: err}
	}
	return nil
}

// abandon closes the file when the command stopped before close.
func (o *errorsOutFile) abandon() {
	if o.f != nil {
		o.f.Close() //nolint:errcheck // the command already failed
	}
}

func importedWord(dryRun bool) string {
	if dryRun {
		return "checked only (--dry-run)"
	}
	return "imported"
}

func printImportSummary(w io.Writer, sum importSummary, dryRun bool) {
	for _, f := range sum.Files {
		if f.Refused != "" {
			fmt.Fprintf(w, "%s: refused whole\n", f.Path)
			continue
		}
		fmt.Fprintf(w, "%s: %d lines, %d valid, %d rejected, %d blank; %d %s\n", f.Path, f.Lines, f.Valid, f.Rejected, f.Blank, f.Imported, importedWord(dryRun))
		if wn := f.Warnings; wn.UnknownPlatform+wn.OlderThan3BusinessDays+wn.Superseded+wn.MaybeMissingCountryCode > 0 {
			fmt.Fprintf(w, "  warnings: %d unknown platform (default source used), %d older than 3 business days (İYS may refuse them), %d superseded by a newer consent, "+
				"%d maybe missing the country code (10 digits starting with 5: a Türkiye mobile needs 90 in front)\n",
				wn.UnknownPlatform, wn.OlderThan3BusinessDays, wn.Superseded, wn.MaybeMissingCountryCode)
		}
	}
}
