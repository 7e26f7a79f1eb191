// Package source reads a connector's consents from the brand's own user
// table (the reverse-ETL way in): the connector's source query, run over the
// brand's database (IYS_SOURCE_DATABASE_URL) in READ ONLY transactions, page
// after page keyset on external_id, each value checked as the file import and
// the HTTP intake check theirs (upload.Validator), merged newest-wins into
// consents (store.ImportSource) in one transaction. Only users whose
// permission changed become pending.
//
// The query returns one row per user, with these columns:
//
//	external_id   text, unique, non-null   the user's id in the brand's systems
//	email         text or NULL             the address of EPOSTA
//	phone         text or NULL             the number of MESAJ and ARAMA, digits with
//	                                       the country code (905331234562), as in the SMS file
//	sms_status    'ONAY', 'RET' or NULL    MESAJ permission; NULL: none recorded
//	sms_at        timestamptz              when it was given
//	call_status   'ONAY', 'RET' or NULL    ARAMA permission
//	call_at       timestamptz
//	email_status  'ONAY', 'RET' or NULL    EPOSTA permission
//	email_at      timestamptz
//
// Only the channels the connector has are read. The İYS source of every
// consent is the connector's default source (HS_WEB unless installed
// otherwise); the query has no source column. A value that fails its checks
// is logged (recipient masked) and skipped, with the rest of its user kept;
// it never stops the run.
package source

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	db  *sql.DB // the brand's database, used read-only
	log *zap.Logger
	// PageSize is the users read per page (DefaultPageSize).
	PageSize int
	// Now, when set, is the time the values are checked against (future,
	// 3 business days); zero: consent.Now() at each read.
	Now consent.Date

	pageRead func(page int) // for tests: called after each page
}

// New makes a Reader of the brand's database db.
func New(st *store.Store, db *sql.DB, log *zap.Logger) *Reader {
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
	Import         store.SourceResult
}

// Pull is the engine's hook (sync.Puller): it reads the connector's source
// before its push; a connector without a source query is left alone.
func (r *Reader) Pull(ctx context.Context, c consent.ConnectorRef, _ int64) error {
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

// channelSpec is one consent type as the query gives it.
type channelSpec struct {
	typ     consent.Type
	channel upload.Channel
}

// Read reads the connector's source query to its end and merges it.
func (r *Reader) Read(ctx context.Context, conn store.Connector) (Result, error) {
	var res Result
	if conn.SourceQuery == "" {
		return res, fmt.Errorf("source %s: the connector has no source query", conn.BrandCode)
	}
	if r.db == nil {
		return res, fmt.Errorf("source %s: IYS_SOURCE_DATABASE_URL is not set", conn.BrandCode)
	}
	v, err := upload.NewValidator(conn.DefaultSource, r.Now)
	if err != nil {
		return res, err
	}
	var specs []channelSpec
	for _, t := range conn.Channels { // İYS's order: MESAJ, ARAMA, EPOSTA
		ch := upload.SMS
		if t == consent.TypeEposta {
			ch = upload.Email
		}
		specs = append(specs, channelSpec{typ: t, channel: ch})
	}
	type tally struct{ valid, rejected int }
	counts := map[upload.Channel]*tally{upload.Email: {}, upload.SMS: {}}
	pageSize := r.PageSize
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	query := "SELECT external_id, email, phone, sms_status, sms_at, call_status, call_at, email_status, email_at FROM (" +
		conn.SourceQuery + ") AS q WHERE external_id > $1 ORDER BY external_id LIMIT $2"

	src := func(emit func(store.ImportRow) error) error {
		// Users without an external id are never in a page (NULL and "" are
		// not > ""): count them apart.
		if n, err := r.count(ctx, "SELECT count(*) FROM ("+conn.SourceQuery+") AS q WHERE external_id IS NULL OR external_id = ''"); err != nil {
			return err
		} else if n > 0 {
			res.RejectedUsers += n
			r.log.Warn("source: skipped users without an external_id", zap.String("brand_code", conn.BrandCode), zap.Int("users", n))
		}
		after, prev := "", ""
		for {
			n, last, err := r.page(ctx, query, after, pageSize, func(u user) error {
				res.Users++
				repeated := u.externalID == prev
				prev = u.externalID
				if repeated {
					res.RejectedUsers++
					r.log.Warn("source: skipped a user whose external_id is repeated", zap.String("brand_code", conn.BrandCode),
						zap.String("external_id", u.externalID))
					return nil
				}
				valid := map[upload.Channel]bool{}
				bad := map[upload.Channel]bool{}
				for _, sp := range specs {
					val := u.values[sp.typ]
					if !val.status.Valid && !val.at.Valid {
						continue // no permission recorded
					}
					it := upload.Item{Channel: sp.channel, Recipient: u.email.String, Source: string(conn.DefaultSource),
						Permission: val.status.String, ExternalID: u.externalID}
					if sp.channel == upload.SMS {
						it.Recipient = u.phone.String
					}
					if val.at.Valid {
						it.Timestamp = val.at.Time.Format(time.RFC3339)
					}
					l, fault := v.Check(it)
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
					if err := emit(store.ImportRow{Line: res.Users, Recipient: l.Recipient, RecipientType: conn.RecipientType,
						Type: sp.typ, Status: l.Status, ConsentDate: l.ConsentDate, Source: l.Source, ExternalID: l.ExternalID}); err != nil {
						return err
					}
					res.Rows++
					valid[sp.channel] = true
				}
				for ch, t := range counts {
					switch {
					case valid[ch]:
						t.valid++
					case bad[ch]:
						t.rejected++
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			res.Pages++
			if r.pageRead != nil {
				r.pageRead(res.Pages)
			}
			if n < pageSize {
				return nil
			}
			after = last
		}
	}
	chans := func() []store.IntakeChannel {
		return []store.IntakeChannel{
			{Channel: "email", Valid: counts[upload.Email].valid, Rejected: counts[upload.Email].rejected},
			{Channel: "sms", Valid: counts[upload.SMS].valid, Rejected: counts[upload.SMS].rejected},
		}
	}
	imp, err := r.st.ImportSource(ctx, conn.ID, "source:"+conn.BrandCode, chans, src)
	if err != nil {
		return res, fmt.Errorf("source %s: %w", conn.BrandCode, err)
	}
	res.Import = imp
	log := r.log.Info
	if res.RejectedValues+res.RejectedUsers+imp.Disappeared > 0 {
		log = r.log.Warn
	}
	log("read the user-table source", zap.String("brand_code", conn.BrandCode), zap.Int("pages", res.Pages),
		zap.Int("users", res.Users), zap.Int("rows", res.Rows), zap.Int("inserted", imp.Inserted),
		zap.Int("updated", imp.Updated), zap.Int("unchanged", imp.Unchanged),
		zap.Int("rejected_values", res.RejectedValues), zap.Int("rejected_users", res.RejectedUsers),
		zap.Int("too_old", res.TooOld), zap.Int("disappeared_users", imp.Disappeared))
	return res, nil
}

// value is one channel's permission in a user row.
type value struct {
	status sql.NullString
	at     sql.NullTime
}

// user is one row of the query.
type user struct {
	externalID   string
	email, phone sql.NullString
	values       map[consent.Type]value
}

// page reads one page of the query in a READ ONLY transaction and hands each
// user to fn; it returns the users read and the last external id.
func (r *Reader) page(ctx context.Context, query, after string, size int, fn func(user) error) (int, string, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, "", fmt.Errorf("source query: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	rows, err := tx.QueryContext(ctx, query, after, size)
	if err != nil {
		return 0, "", fmt.Errorf("source query: %w", err)
	}
	defer rows.Close()
	n, last := 0, after
	for rows.Next() {
		var ext sql.NullString
		var sms, call, email value
		u := user{}
		if err := rows.Scan(&ext, &u.email, &u.phone, &sms.status, &sms.at, &call.status, &call.at, &email.status, &email.at); err != nil {
			return n, last, fmt.Errorf("source query: %w", err)
		}
		u.externalID = ext.String
		u.values = map[consent.Type]value{consent.TypeMesaj: sms, consent.TypeArama: call, consent.TypeEposta: email}
		n++
		if err := fn(u); err != nil {
			return n, last, err
		}
		last = u.externalID
	}
	if err := rows.Err(); err != nil {
		return n, last, fmt.Errorf("source query: %w", err)
	}
	if err := tx.Commit(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return n, last, err
	}
	return n, last, nil
}

// count runs a count over the query in a READ ONLY transaction.
func (r *Reader) count(ctx context.Context, query string) (int, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("source query: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	var n int
	if err := tx.QueryRowContext(ctx, query).Scan(&n); err != nil {
		return 0, fmt.Errorf("source query: %w", err)
	}
	return n, nil
}
