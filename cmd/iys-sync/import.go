package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/importer"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// importSummary is the import --json output of the contract.
type importSummary struct {
	Valid    int                    `json:"valid"`
	Rejected int                    `json:"rejected"`
	Files    []importer.FileSummary `json:"files"`
}

func runImport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "import")
	cf := config.RegisterFlags(fs)
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
	ch, err := upload.ParseChannel(*channel)
	if err != nil {
		return usagef("--channel: %v", err)
	}
	opts := importer.Options{Upload: upload.Options{Channel: ch}, DryRun: *dryRun}
	if *types != "" {
		if opts.Upload.Types, err = upload.ParseTypes(*types); err != nil {
			return usagef("--type: %v", err)
		}
	}
	if err := opts.Upload.Validate(); err != nil {
		return usagef("%v", err)
	}
	if *rtype != "" {
		rt, err := consent.ParseRecipientType(*rtype)
		if err != nil {
			return usagef("--recipient-type: %v", err)
		}
		opts.RecipientType = rt
	}
	cfg, err := cf.Load(e.getenv)
	if err != nil {
		return err
	}

	var st *store.Store
	var connectorID int64
	if *dryRun {
		if opts.RecipientType == "" {
			opts.RecipientType = consent.Bireysel
		}
	} else {
		if err := checkCode("brand-code", *brand); err != nil {
			return err
		}
		if st, err = openStore(ctx, cfg); err != nil {
			return err
		}
		defer st.Close()
		c, err := st.Connector(ctx, *brand)
		if errors.Is(err, store.ErrNoConnector) {
			return fmt.Errorf("no connector for brand code %s: run iys-sync install first", *brand)
		}
		if err != nil {
			return err
		}
		for _, t := range opts.Upload.ConsentTypes() {
			if !slices.Contains(c.Channels, t) {
				return fmt.Errorf("connector %s does not sync %s consents (its channels: %s): reinstall it with that channel", *brand, t, consent.JoinTypes(c.Channels, ","))
			}
		}
		connectorID = c.ID
		opts.Upload.DefaultSource = c.DefaultSource
		if opts.RecipientType == "" {
			opts.RecipientType = c.RecipientType
		}
	}

	var errw io.Writer = e.stderr
	if *errorsOut != "" {
		f, err := os.Create(*errorsOut)
		if err != nil {
			return fmt.Errorf("create --errors-out file: %w", err)
		}
		defer f.Close()
		errw = io.MultiWriter(e.stderr, f)
	}
	bar := newProgressBar(e.stderr)
	opts.OnReject = func(r *upload.Rejection) {
		bar.clear()
		fmt.Fprintln(errw, r.Error())
	}
	opts.Progress = bar.update

	im, err := importer.New(st, connectorID, opts)
	if err != nil {
		return err
	}
	sum := importSummary{Files: []importer.FileSummary{}}
	refused := 0
	for _, path := range files {
		fsum, err := im.File(ctx, path)
		bar.clear()
		if err != nil {
			refused++
			fmt.Fprintf(e.stderr, "%s: refused whole, nothing of it imported: %v\n", path, err)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		sum.Valid += fsum.Valid
		sum.Rejected += fsum.Rejected
		sum.Files = append(sum.Files, fsum)
	}
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		if err := enc.Encode(sum); err != nil {
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
		if wn := f.Warnings; wn.UnknownPlatform+wn.OlderThan3BusinessDays+wn.Superseded > 0 {
			fmt.Fprintf(w, "  warnings: %d unknown platform (default source used), %d older than 3 business days (İYS may refuse them), %d superseded by a newer consent\n",
				wn.UnknownPlatform, wn.OlderThan3BusinessDays, wn.Superseded)
		}
	}
}
