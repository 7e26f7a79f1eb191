package importer

import (
	"context"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// The files go to a connector that syncs their types, with its default
// source and recipient type; a dry run has no connector.
func TestNewTakesTheConnectors(t *testing.T) {
	st := new(store.Store) // New only keeps it
	sms := upload.Options{Channel: upload.SMS, Types: []consent.Type{consent.TypeMesaj, consent.TypeArama}}
	emailOnly := &store.Connector{ID: 3, BrandCode: "600001", Channels: []consent.Type{consent.TypeEposta},
		RecipientType: consent.Tacir, DefaultSource: consent.SourceWeb}
	if _, err := New(st, emailOnly, Options{Upload: sms}); err == nil ||
		err.Error() != "connector 600001 does not sync MESAJ consents (its channels: EPOSTA): add that channel with "+
			"iys-sync install --update --brand-code 600001 --channels EPOSTA,MESAJ" {
		t.Fatalf("SMS files to an email connector: %v", err)
	}

	both := &store.Connector{ID: 4, BrandCode: "600002", Channels: []consent.Type{consent.TypeMesaj, consent.TypeArama},
		RecipientType: consent.Tacir, DefaultSource: consent.SourceMobil}
	im, err := New(st, both, Options{Upload: sms})
	if err != nil {
		t.Fatal(err)
	}
	if im.connectorID != 4 || im.opts.RecipientType != consent.Tacir || im.opts.Upload.DefaultSource != consent.SourceMobil {
		t.Errorf("connector %d, recipient type %s, default source %s: want the connector's", im.connectorID,
			im.opts.RecipientType, im.opts.Upload.DefaultSource)
	}
	if im, err = New(st, both, Options{Upload: sms, RecipientType: consent.Bireysel}); err != nil || im.opts.RecipientType != consent.Bireysel {
		t.Errorf("a recipient type given: %v, %v", im.opts.RecipientType, err)
	}

	if im, err = New(nil, nil, Options{Upload: sms, DryRun: true}); err != nil || im.opts.RecipientType != consent.Bireysel || im.connectorID != 0 {
		t.Errorf("dry run: %v, %+v", err, im)
	}
	if _, err := New(nil, nil, Options{Upload: sms}); err == nil || !strings.Contains(err.Error(), "needs the database") {
		t.Errorf("an import without a connector: %v", err)
	}
}

// A file read a second time (see store.ImportFile) must hold what the first
// read did: the same rows, or an error that says the file changed.
func TestReadAgainRefusesAChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sms.txt")
	content := "905331234562; SMS; RET; 15.05.2025 14:23:00; user456\n90533; SMS; ONAY; 15.05.2025 14:23:00\n905551112233; web; ONAY; 15.05.2025 14:30:00\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	im := &Importer{opts: Options{Upload: upload.Options{Channel: upload.SMS, Now: consent.NewDate(time.Date(2025, 5, 16, 0, 0, 0, 0, time.UTC))},
		RecipientType: consent.Bireysel}, types: []consent.Type{consent.TypeMesaj, consent.TypeArama}}
	read := func() ([]store.ImportRow, error) {
		var rows []store.ImportRow
		var first atomic.Int64
		first.Store(int64(crc32.Checksum([]byte(content), castagnoli)))
		err := im.readAgain(context.Background(), path, &first, func(r store.ImportRow) error {
			rows = append(rows, r)
			return nil
		})
		return rows, err
	}
	rows, err := read()
	if err != nil || len(rows) != 4 || rows[0].Line != 1 || rows[3].Line != 3 || rows[3].Type != consent.TypeArama {
		t.Fatalf("read again: %+v, %v", rows, err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(content, "RET", "ONAY", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); err == nil || !strings.Contains(err.Error(), "changed while it was imported") {
		t.Fatalf("a changed file read again: %v", err)
	}
}
