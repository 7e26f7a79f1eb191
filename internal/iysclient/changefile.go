package iysclient

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// The daily change file's columns are not documented, so it is read by
// header names, leniently: any order, any case, English or Turkish names,
// a comma, semicolon or tab separator, a UTF-8 BOM. Every column is kept in
// Fields as written; the known ones also fill Record.

// fileColumns maps a normalised header name to the field it fills. [guess]
// The Turkish names are İYS's panel wording.
var fileColumns = map[string]string{
	"recipient": "recipient", "alici": "recipient",
	"recipienttype": "recipientType", "alicitipi": "recipientType", "alicituru": "recipientType",
	"type": "type", "tip": "type", "izintipi": "type", "izinturu": "type",
	"status": "status", "durum": "status", "izindurumu": "status",
	"source": "source", "kaynak": "source", "izinkaynagi": "source",
	"consentdate": "consentDate", "izintarihi": "consentDate",
	"creationdate": "creationDate", "olusturmatarihi": "creationDate", "kayittarihi": "creationDate",
	"transactionid": "transactionId", "islemid": "transactionId", "islemno": "transactionId",
}

// FileRow is one row of a daily change file.
type FileRow struct {
	Line   int               // 1-based line of the file
	Record Record            // known columns; a date that cannot be read is zero
	Fields map[string]string // every column by its header as written
}

// ChangeFileReader reads a daily change file row by row from its body, so
// that memory stays flat however large the file: nothing is kept of a row
// once the next is read.
type ChangeFileReader struct {
	cr     *csv.Reader
	header []string // as written, trimmed
	known  []string // the Record field each column fills, "" for none
}

// NewChangeFileReader reads the file's header. It fails when the file has
// no header or no recipient column.
func NewChangeFileReader(r io.Reader) (*ChangeFileReader, error) {
	br := bufio.NewReader(r)
	head, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse change file: %w", err)
	}
	head = strings.TrimPrefix(head, "\uFEFF")
	cr := csv.NewReader(io.MultiReader(strings.NewReader(head), br))
	cr.Comma = sniffComma(head)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("parse change file: header: %w", err)
	}
	f := &ChangeFileReader{cr: cr, header: make([]string, len(header)), known: make([]string, len(header))}
	hasRecipient := false
	for i, h := range header {
		f.header[i] = strings.TrimSpace(h)
		f.known[i] = fileColumns[normHeader(f.header[i])]
		hasRecipient = hasRecipient || f.known[i] == "recipient"
	}
	if !hasRecipient {
		return nil, fmt.Errorf("parse change file: no recipient column in header %q", f.header)
	}
	return f, nil
}

// Next reads the next row; io.EOF after the last. Any other error names
// the line and ends the file.
func (f *ChangeFileReader) Next() (FileRow, error) {
	rec, err := f.cr.Read()
	if errors.Is(err, io.EOF) {
		return FileRow{}, io.EOF
	}
	if err != nil {
		return FileRow{}, fmt.Errorf("parse change file: %w", err)
	}
	line, _ := f.cr.FieldPos(0)
	row := FileRow{Line: line, Fields: make(map[string]string, len(f.header))}
	for i, v := range rec {
		if i >= len(f.header) {
			break
		}
		v = strings.TrimSpace(v)
		row.Fields[f.header[i]] = v
		fillRecord(&row.Record, f.known[i], v)
	}
	return row, nil
}

func fillRecord(r *Record, field, v string) {
	switch field {
	case "recipient":
		r.Recipient = v
	case "recipientType":
		r.RecipientType = consent.RecipientType(strings.ToUpper(v))
	case "type":
		r.Type = consent.Type(strings.ToUpper(v))
	case "status":
		r.Status = consent.Status(strings.ToUpper(v))
	case "source":
		r.Source = consent.Source(strings.ToUpper(v))
	case "consentDate":
		r.ConsentDate = parseLenientString(v)
	case "creationDate":
		r.CreationDate = parseLenientString(v)
	case "transactionId":
		r.TransactionID = v
	}
}

// turkishFold maps Turkish letters to their ASCII base, before lower-casing
// (which would turn "I" into "i" but "İ" into "i̇").
var turkishFold = strings.NewReplacer("İ", "i", "I", "i", "ı", "i", "Ş", "s", "ş", "s", "Ğ", "g", "ğ", "g",
	"Ü", "u", "ü", "u", "Ö", "o", "ö", "o", "Ç", "c", "ç", "c")

// normHeader folds a header to lower-case ASCII letters and digits.
func normHeader(h string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(turkishFold.Replace(h)) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// sniffComma picks the separator the header uses most.
func sniffComma(head string) rune {
	best, n := ',', strings.Count(head, ",")
	for _, c := range []rune{';', '\t'} {
		if k := strings.Count(head, string(c)); k > n {
			best, n = c, k
		}
	}
	return best
}
