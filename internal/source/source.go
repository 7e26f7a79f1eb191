// Package source reads a connector's consents from the brand's own user
// table (the reverse-ETL way in): the connector's source query, run over the
// brand's database (IYS_SOURCE_DATABASE_URL, opened by Open with its sessions
// read-only and bounded) in READ ONLY transactions, page after page keyset on
// external_id, each value checked as the file import and the HTTP intake
// check theirs (upload.Validator), merged newest-wins into consents
// (store.ImportSource, which spools the rows so that no transaction of ours
// waits on the brand's database). Only users whose permission changed
// become pending.
//
// The query is one SELECT (CheckQuery) returning one row per user, with
// these columns:
//
//	external_id   text, unique, non-null   the user's id in the brand's systems
//	email         text or NULL             the address of EPOSTA
//	phone         text or NULL             the number of MESAJ and ARAMA: digits with the
//	                                       country code (905331234562), or E.164 (+905331234562)
//	sms_status    'ONAY', 'RET' or NULL    MESAJ permission; NULL: none recorded
//	sms_at        timestamptz              when it was given
//	call_status   'ONAY', 'RET' or NULL    ARAMA permission
//	call_at       timestamptz
//	email_status  'ONAY', 'RET' or NULL    EPOSTA permission
//	email_at      timestamptz
//	sms_source, call_source, email_source  optional, text: where the permission was given,
//	                                       read as the upload files' platform column (an
//	                                       HS_* code or a platform name); NULL or absent:
//	                                       the connector's default source
//
// Only the channels the connector has are read. A value that fails its
// checks is logged (recipient masked) and skipped, with the rest of its user
// kept; it never stops the run.
package source

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// DefaultPageSize is the users read per page.
const DefaultPageSize = 5000

// Reader reads connectors' user-table sources.
type Reader struct {
	st  *store.Store
	db  *DB // the brand's database; nil when IYS_SOURCE_DATABASE_URL is unset
	log *zap.Logger
	// PageSize is the users read per page (DefaultPageSize).
	PageSize int
	// Now, when set, is the time the values are checked against (future,
	// 3 business days); zero: consent.Now() at each read.
	Now consent.Date

	pageRead func(page int) // for tests: called after each page
}

// New makes a Reader of the brand's database db (nil: none set).
func New(st *store.Store, db *DB, log *zap.Logger) *Reader {
	if log == nil {
		log = zap.NewNop()
	}
	return &Reader{st: st, db: db, log: log, PageSize: DefaultPageSize}
}

// Result counts what one read did.
type Result struct {
	Pages          int
	Users          int // rows of the query
	Rows           int // consents given to the merge
	RejectedValues int // channel values skipped by the checks
	RejectedUsers  int // users skipped whole (bad or repeated external id)
	TooOld         int // consents more than 3 business days old (stored; İYS may refuse them)
	// MaybeMissingCountryCode counts phone consents of 10 digits starting
	// with 5: kept (a valid foreign number), most likely a Türkiye mobile
	// written without its 90.
	MaybeMissingCountryCode int
	UnknownPlatform         int // consents whose source column named no known platform: the default source
	FirstPage               time.Duration
	Import                  store.SourceResult
}

// Pull is the engine's hook (sync.Puller): it reads the connector's source
// before its push; a connector without a source query is left alone, and
// one listed without (c.NoSource) is not even looked up.
func (r *Reader) Pull(ctx context.Context, c consent.ConnectorRef, _ int64) error {
	if c.NoSource {
		return nil
	}
	conn, err := r.st.Connector(ctx, c.BrandCode)
	if err != nil {
		return err
	}
	if conn.SourceQuery == "" {
		return nil
	}
	_, err = r.Read(ctx, conn)
	return err
}

// Read reads the connector's source query to its end and merges it.
func (r *Reader) Read(ctx context.Context, conn store.Connector) (Result, error) {
	var res Result
	rd, err := r.prepare(ctx, conn)
	if err != nil {
		return res, err
	}
	src := func(emit func(store.ImportRow) error) error {
		// Users without an external id are never in a page (NULL and "" are
		// not > ""): count them apart.
		if err := r.db.readTx(ctx, func(tx *sql.Tx) error {
			rows, done, err := query(ctx, tx, "SELECT count(*) FROM (\n"+conn.SourceQuery+"\n) AS q WHERE coalesce(q.external_id, '') = $1", "")
			if err != nil {
				return err
			}
			defer done()
			var n int
			if rows.Next() {
				if err := rows.Scan(&n); err != nil {
					return err
				}
			}
			if n > 0 {
				res.RejectedUsers += n
				r.log.Warn("source: skipped users without an external_id", zap.String("brand_code", conn.BrandCode), zap.Int("users", n))
			}
			return rows.Err()
		}); err != nil {
			return r.db.wrap("source query", err)
		}
		return rd.pages(ctx, &res, 0, emit)
	}
	chans := func() []store.IntakeChannel {
		return []store.IntakeChannel{
			{Channel: "email", Valid: rd.counts[upload.Email].valid, Rejected: rd.counts[upload.Email].rejected},
			{Channel: "sms", Valid: rd.counts[upload.SMS].valid, Rejected: rd.counts[upload.SMS].rejected},
		}
	}
	imp, err := r.st.ImportSource(ctx, conn.ID, "source:"+conn.BrandCode, chans, src)
	if err != nil {
		return res, r.db.wrap("source "+conn.BrandCode, err)
	}
	res.Import = imp
	log := r.log.Info
	if res.RejectedValues+res.RejectedUsers+imp.Disappeared+res.MaybeMissingCountryCode > 0 {
		log = r.log.Warn
	}
	log("read the user-table source", zap.String("brand_code", conn.BrandCode), zap.Int("pages", res.Pages),
		zap.Int("users", res.Users), zap.Int("rows", res.Rows), zap.Int("inserted", imp.Inserted),
		zap.Int("updated", imp.Updated), zap.Int("unchanged", imp.Unchanged),
		zap.Int("rejected_values", res.RejectedValues), zap.Int("rejected_users", res.RejectedUsers),
		zap.Int("too_old", res.TooOld), zap.Int("maybe_missing_country_code", res.MaybeMissingCountryCode),
		zap.Int("unknown_platform", res.UnknownPlatform), zap.Int("disappeared_users", imp.Disappeared))
	return res, nil
}

// Probe checks the connector's source query as install does: one
// statement, the expected columns, and its first page read and every value
// checked, read-only. Nothing is stored. Its Result counts that page.
func (r *Reader) Probe(ctx context.Context, conn store.Connector) (Result, error) {
	var res Result
	rd, err := r.prepare(ctx, conn)
	if err != nil {
		return res, err
	}
	err = rd.pages(ctx, &res, 1, func(store.ImportRow) error { return nil })
	return res, err
}

// read is one read of a connector's source, once its query is checked.
type read struct {
	r         *Reader
	conn      store.Connector
	v         *upload.Validator
	specs     []channelSpec
	pageQuery string
	counts    map[upload.Channel]*tally
}

type tally struct{ valid, rejected int }

// channelSpec is one consent type as the query gives it.
type channelSpec struct {
	typ     consent.Type
	channel upload.Channel
}

// prepare checks the query (one SELECT, then its columns, asked of the
// database) and builds the page query.
func (r *Reader) prepare(ctx context.Context, conn store.Connector) (*read, error) {
	if conn.SourceQuery == "" {
		return nil, fmt.Errorf("source %s: the connector has no source query", conn.BrandCode)
	}
	if r.db == nil {
		return nil, fmt.Errorf("source %s: IYS_SOURCE_DATABASE_URL is not set", conn.BrandCode)
	}
	if err := CheckQuery(conn.SourceQuery); err != nil {
		return nil, fmt.Errorf("source %s: %w (install the connector again with a fixed --source-query)", conn.BrandCode, err)
	}
	var list string
	var colErr error
	if err := r.db.readTx(ctx, func(tx *sql.Tx) error {
		rows, done, err := query(ctx, tx, "SELECT * FROM (\n"+conn.SourceQuery+"\n) AS q LIMIT $1", 0)
		if err != nil {
			return err
		}
		defer done()
		cts, err := rows.ColumnTypes()
		if err != nil {
			return err
		}
		list, colErr = checkColumns(cts)
		return nil
	}); err != nil {
		return nil, r.db.wrap("source "+conn.BrandCode+": source query", err)
	}
	if colErr != nil {
		return nil, fmt.Errorf("source %s: %w", conn.BrandCode, colErr)
	}
	v, err := upload.NewValidator(conn.DefaultSource, r.Now)
	if err != nil {
		return nil, err
	}
	rd := &read{r: r, conn: conn, v: v, counts: map[upload.Channel]*tally{upload.Email: {}, upload.SMS: {}},
		pageQuery: "SELECT " + list + " FROM (\n" + conn.SourceQuery + "\n) AS q WHERE q.external_id > $1 ORDER BY q.external_id LIMIT $2"}
	for _, t := range conn.Channels { // İYS's order: MESAJ, ARAMA, EPOSTA
		ch := upload.SMS
		if t == consent.TypeEposta {
			ch = upload.Email
		}
		rd.specs = append(rd.specs, channelSpec{typ: t, channel: ch})
	}
	return rd, nil
}

// pages reads the query page after page (at most maxPages; 0: to its end),
// each in its own READ ONLY transaction, and emits each valid consent.
func (rd *read) pages(ctx context.Context, res *Result, maxPages int, emit func(store.ImportRow) error) error {
	size := rd.r.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	after, prev := "", ""
	for {
		start := time.Now()
		n := 0
		err := rd.r.db.readTx(ctx, func(tx *sql.Tx) error {
			rows, done, err := query(ctx, tx, rd.pageQuery, after, size)
			if err != nil {
				return err
			}
			defer done()
			for rows.Next() {
				var ext sql.NullString
				u := user{}
				var sms, call, email value
				if err := rows.Scan(&ext, &u.email, &u.phone, &sms.status, &sms.at, &call.status, &call.at,
					&email.status, &email.at, &sms.source, &call.source, &email.source); err != nil {
					return err
				}
				u.externalID = ext.String
				u.values = map[consent.Type]value{consent.TypeMesaj: sms, consent.TypeArama: call, consent.TypeEposta: email}
				n++
				after = u.externalID
				repeated := u.externalID == prev
				prev = u.externalID
				if err := rd.user(res, u, repeated, emit); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		if err != nil {
			return rd.r.db.wrap("source query", err)
		}
		res.Pages++
		if res.Pages == 1 {
			res.FirstPage = time.Since(start)
		}
		if rd.r.pageRead != nil {
			rd.r.pageRead(res.Pages)
		}
		if n < size || (maxPages > 0 && res.Pages >= maxPages) {
			return nil
		}
	}
}

// user checks one user's values and emits the valid ones.
func (rd *read) user(res *Result, u user, repeated bool, emit func(store.ImportRow) error) error {
	r, conn := rd.r, rd.conn
	res.Users++
	if repeated {
		res.RejectedUsers++
		r.log.Warn("source: skipped a user whose external_id is repeated", zap.String("brand_code", conn.BrandCode),
			zap.String("external_id", u.externalID))
		return nil
	}
	// The phone as people and systems write it: digits or E.164.
	phone, maybeMissingCC, phoneErr := u.phone.String, false, error(nil)
	if strings.TrimSpace(phone) != "" {
		var e164 string
		if e164, maybeMissingCC, phoneErr = consent.NormalizePhoneInput(phone); phoneErr == nil {
			phone = strings.TrimPrefix(e164, "+")
		}
	}
	valid := map[upload.Channel]bool{}
	bad := map[upload.Channel]bool{}
	for _, sp := range rd.specs {
		val := u.values[sp.typ]
		if !val.status.Valid && !val.at.Valid {
			continue // no permission recorded
		}
		it := upload.Item{Channel: sp.channel, Recipient: u.email.String, Permission: val.status.String, ExternalID: u.externalID}
		if src := strings.TrimSpace(val.source.String); src != "" {
			it.Platform = src // an HS_* code or a platform, as the files' column
		} else {
			it.Source = string(conn.DefaultSource)
		}
		if sp.channel == upload.SMS {
			it.Recipient = phone
		}
		if val.at.Valid {
			it.Timestamp = val.at.Time.Format(time.RFC3339)
		}
		var l upload.Line
		var fault *upload.Fault
		if sp.channel == upload.SMS && phoneErr != nil {
			fault = &upload.Fault{Field: upload.FieldPhone, Message: phoneErr.Error()}
		} else {
			l, fault = rd.v.Check(it)
		}
		if fault != nil {
			res.RejectedValues++
			bad[sp.channel] = true
			r.log.Warn("source: skipped a value that fails its checks", zap.String("brand_code", conn.BrandCode),
				zap.String("external_id", u.externalID), zap.String("type", string(sp.typ)),
				zap.String("recipient", consent.MaskRecipient(it.Recipient)),
				zap.String("field", fault.Field), zap.String("reason", fault.Message))
			continue
		}
		if l.TooOld {
			res.TooOld++
		}
		if l.UnknownPlatform {
			res.UnknownPlatform++
		}
		if sp.channel == upload.SMS && maybeMissingCC {
			res.MaybeMissingCountryCode++
		}
		if err := emit(store.ImportRow{Line: res.Users, Recipient: l.Recipient, RecipientType: conn.RecipientType,
			Type: sp.typ, Status: l.Status, ConsentDate: l.ConsentDate, Source: l.Source, ExternalID: l.ExternalID}); err != nil {
			return err
		}
		res.Rows++
		valid[sp.channel] = true
	}
	for ch, t := range rd.counts {
		switch {
		case valid[ch]:
			t.valid++
		case bad[ch]:
			t.rejected++
		}
	}
	return nil
}

// value is one channel's permission in a user row.
type value struct {
	status, source sql.NullString
	at             sql.NullTime
}

// user is one row of the query.
type user struct {
	externalID   string
	email, phone sql.NullString
	values       map[consent.Type]value
}
