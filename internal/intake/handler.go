// Package intake is the HTTP intake of consents: brands' own systems post
// consents as JSON to POST /v1/connectors/{brandCode}/consents, and each item
// goes through exactly the validation of an upload file line (the per-field
// checks of internal/upload) and the newest-wins merge of the file import
// (store.ImportItems, over the import's own SQL). Each item gets its verdict
// in the response, in request order.
//
// The same server answers the brand's senders whether a recipient may be
// messaged (GET and POST /v1/connectors/{brandCode}/permissions: see
// permissions.go) and what changed on İYS's side (GET
// /v1/connectors/{brandCode}/changes: see changes.go), from the same records
// and with the same tokens.
//
// Authentication is by bearer tokens whose SHA-256 hashes come from
// IYS_INTAKE_TOKENS. The logs hold counts, brand codes and token names only:
// never a recipient, never a rejected value.
package intake

import (
	"context"
	"crypto/rand"
	_ "embed" // openapi.json
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/store"
	"github.com/iys-sync/iys-sync/internal/upload"
)

// Limits of one request.
const (
	// DefaultMaxItems is the most consents one request may hold.
	DefaultMaxItems = 10000
	// DefaultMaxBytes bounds a request body: 10,000 items with 255-character
	// external ids of Turkish letters fit.
	DefaultMaxBytes = 16 << 20
	// DefaultConcurrency is how many requests are read and merged at once
	// (each holds its body in memory, a database connection and a staging
	// table); the others wait their turn before their body is read.
	DefaultConcurrency = 4
	// DefaultQueueWait is how long a request waits for its turn before it
	// is answered 503 with Retry-After.
	DefaultQueueWait = 5 * time.Second
)

// Retry-After of the 503 answers, in seconds: all the slots busy, the
// database unavailable (restarting, out of connections, a lock not granted
// in time...).
const (
	retryBusy        = "2"
	retryUnavailable = "5"
)

// OpenAPI is the description of the API served at /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Handler serves the intake API. Make it with New.
type Handler struct {
	st       *store.Store
	tokens   []token
	log      *zap.Logger
	now      func() consent.Date
	maxItems int
	maxBytes int64
	// allowPending answers allowed for an ONAY not yet in İYS (IYS_PERMISSIONS_ALLOW_PENDING).
	allowPending bool
	slots        chan struct{}
	wait         time.Duration // for a slot
	mux          *http.ServeMux
}

// Option changes a default of New.
type Option func(*Handler)

// WithMaxItems sets the most items a request may hold.
func WithMaxItems(n int) Option { return func(h *Handler) { h.maxItems = n } }

// WithMaxBytes sets the largest request body.
func WithMaxBytes(n int64) Option { return func(h *Handler) { h.maxBytes = n } }

// WithConcurrency sets how many requests are read and merged at once.
func WithConcurrency(n int) Option {
	return func(h *Handler) { h.slots = make(chan struct{}, max(n, 1)) }
}

// WithQueueWait sets how long a request waits for its turn.
func WithQueueWait(d time.Duration) Option { return func(h *Handler) { h.wait = d } }

// WithAllowPending makes a permission check allow an ONAY still on its way
// to İYS (pending or in flight), for brands that choose to message on it.
func WithAllowPending(allow bool) Option { return func(h *Handler) { h.allowPending = allow } }

// WithClock sets the clock the timestamp checks are made against (tests).
func WithClock(now func() consent.Date) Option { return func(h *Handler) { h.now = now } }

// New makes the handler. tokens are IYS_INTAKE_TOKENS entries, name:sha256hex
// or name:sha256hex:BRAND,BRAND; at least one is required.
func New(st *store.Store, tokens []string, log *zap.Logger, opts ...Option) (*Handler, error) {
	toks, err := parseTokens(tokens)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("intake: no store")
	}
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{st: st, tokens: toks, log: log, now: consent.Now,
		maxItems: DefaultMaxItems, maxBytes: DefaultMaxBytes, slots: make(chan struct{}, DefaultConcurrency),
		wait: DefaultQueueWait}
	for _, o := range opts {
		o(h)
	}
	if h.maxItems < 1 || h.maxBytes < 1 {
		return nil, errors.New("intake: the item and byte limits must be positive")
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("/v1/connectors/{brandCode}/consents", h.consents)
	h.mux.HandleFunc("/v1/connectors/{brandCode}/permissions", h.permissions)
	h.mux.HandleFunc("/v1/connectors/{brandCode}/changes", h.changes)
	h.mux.HandleFunc("/v1/connectors/{brandCode}/consents/{recipient}/history", h.history)
	h.mux.HandleFunc("/v1/openapi.json", h.openAPI)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: POST /v1/connectors/{brandCode}/consents, "+
			"GET /v1/connectors/{brandCode}/consents/{recipient}/history, "+
			"GET or POST /v1/connectors/{brandCode}/permissions, GET /v1/connectors/{brandCode}/changes, GET /v1/openapi.json")
	})
	return h, nil
}

// ServeHTTP routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(OpenAPI) //nolint:errcheck // the client went away
}

// exchange is one request and its answer: the logger of the request, and
// its error answers, logged once with what the request was.
type exchange struct {
	w    http.ResponseWriter
	r    *http.Request
	log  *zap.Logger
	what string // "intake request", "permission check": the log's subject
}

func (h *Handler) exchange(w http.ResponseWriter, r *http.Request, what string) *exchange {
	return &exchange{w: w, r: r, what: what, log: h.log.With(zap.String("brand_code", r.PathValue("brandCode")))}
}

// fail answers an error. The message is ours: it holds no recipient and no
// value of the request.
func (x *exchange) fail(status int, code, msg string, fields ...zap.Field) {
	x.failField(status, code, "", msg, fields...)
}

// failField is fail naming the field of the request at fault.
func (x *exchange) failField(status int, code, field, msg string, fields ...zap.Field) {
	lvl := zapcore.WarnLevel
	if status == http.StatusInternalServerError {
		lvl = zapcore.ErrorLevel // a bug
	}
	x.log.Log(lvl, x.what+" refused", append([]zap.Field{zap.Int("status", status), zap.String("code", code)}, fields...)...)
	writeFieldError(x.w, status, code, field, msg)
}

// unavailable answers what may pass: the client sends the same request again later.
func (x *exchange) unavailable(retryAfter, code, msg string, fields ...zap.Field) {
	x.w.Header().Set("Retry-After", retryAfter)
	x.fail(http.StatusServiceUnavailable, code, msg, fields...)
}

// dbFailed answers a database error: 503 for what may pass, 500 for a bug.
// nothing says what was not done ("nothing was stored").
func (x *exchange) dbFailed(err error, nothing, what string) {
	if store.Transient(err) {
		x.unavailable(retryUnavailable, "unavailable", "the database is unavailable for now: "+nothing+", send the request again",
			zap.Error(err))
		return
	}
	x.fail(http.StatusInternalServerError, "internal", what, zap.Error(err))
}

// admit checks the method, the brand code of the path and the bearer token
// and its brands, then reads the connector. When it returns false it has
// answered the request.
func (h *Handler) admit(x *exchange, methods ...string) (store.Connector, *token, bool) {
	if !slices.Contains(methods, x.r.Method) {
		x.w.Header().Set("Allow", strings.Join(methods, ", "))
		x.fail(http.StatusMethodNotAllowed, "method_not_allowed", "use "+strings.Join(methods, " or "))
		return store.Connector{}, nil, false
	}
	brand := x.r.PathValue("brandCode")
	if err := checkBrandCode(brand); err != nil {
		x.fail(http.StatusBadRequest, "bad_brand_code", err.Error())
		return store.Connector{}, nil, false
	}
	// Who was refused is worth knowing; the token never is.
	client := zap.String("client", x.r.RemoteAddr)
	tok := h.authenticate(x.r)
	if tok == nil {
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="iys-sync intake"`)
		x.fail(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required: Authorization: Bearer <token>", client)
		return store.Connector{}, nil, false
	}
	x.log = x.log.With(zap.String("token", tok.name))
	if !tok.mayUse(brand) {
		x.fail(http.StatusForbidden, "forbidden", "this token may not use this connector", client)
		return store.Connector{}, nil, false
	}
	conn, err := h.st.Connector(x.r.Context(), brand)
	switch {
	case errors.Is(err, store.ErrNoConnector):
		x.fail(http.StatusNotFound, "unknown_connector", "no connector is installed for this brand code: run iys-sync install first")
		return store.Connector{}, nil, false
	case err != nil:
		x.dbFailed(err, "nothing was done", "the connector could not be read")
		return store.Connector{}, nil, false
	}
	return conn, tok, true
}

// consents is POST /v1/connectors/{brandCode}/consents.
func (h *Handler) consents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := h.exchange(w, r, "intake request")
	conn, tok, ok := h.admit(x, http.MethodPost)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		x.fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be a JSON array sent as Content-Type: application/json")
		return
	}
	// The rest answers as the exchange does; nothing is stored on a failure.
	fail, unavailable, log := x.fail, x.unavailable, x.log
	dbFailed := func(err error, what string) { x.dbFailed(err, "nothing was stored", what) }
	// Wait for a slot before reading the body, so that the bodies in memory
	// are at most the slots'; a client that gives up frees its place.
	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-timer.C:
		unavailable(retryBusy, "busy", "the intake is busy with other requests: nothing was read or stored, send the request again")
		return
	case <-r.Context().Done():
		unavailable(retryBusy, "canceled", "the request ended before its turn")
		return
	}
	items, status, code, msg := h.decode(w, r)
	if status != 0 {
		fail(status, code, msg)
		return
	}
	// The request's id names it in the events of the records it writes
	// (store.ImportItems), and the client gets it back to quote.
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	resp, err := h.store(r.Context(), conn, "api:"+tok.name, reqID, items)
	switch {
	case err != nil && (errors.Is(err, context.Canceled) || r.Context().Err() != nil):
		unavailable(retryBusy, "canceled", "the request ended before it was stored: nothing was stored")
		return
	case err != nil:
		dbFailed(err, "the consents could not be stored, and nothing was")
		return
	}
	log.Info("intake request stored", zap.Int("items", len(items)), zap.Int("accepted", resp.Accepted),
		zap.Int("superseded", resp.Superseded), zap.Int("unchanged", resp.Unchanged), zap.Int("rejected", resp.Rejected),
		zap.Duration("took", time.Since(start)))
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		log.Debug("intake: write response", zap.Error(err))
	}
}

// Response is the answer to a stored request: counts, and one entry per item
// in request order.
type Response struct {
	BrandCode  string   `json:"brandCode"`
	Received   int      `json:"received"`
	Accepted   int      `json:"accepted"`
	Superseded int      `json:"superseded"`
	Unchanged  int      `json:"unchanged"`
	Rejected   int      `json:"rejected"`
	Items      []Result `json:"items"`
}

// Result is one item's verdict. Field and Message are set for rejected
// items: the field and message a file line with the same value gets.
// Warnings flag valid items İYS may still refuse or that were mapped to the
// default source.
type Result struct {
	Index    int      `json:"index"`
	Verdict  string   `json:"verdict"`
	Field    string   `json:"field,omitempty"`
	Message  string   `json:"message,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Verdicts of Result.
const (
	VerdictAccepted   = string(store.VerdictAccepted)
	VerdictSuperseded = string(store.VerdictSuperseded)
	VerdictUnchanged  = string(store.VerdictUnchanged)
	VerdictRejected   = "rejected"
)

// Warnings of Result, named as the import --json summary names them.
const (
	WarningUnknownPlatform = "unknownPlatform"
	WarningTooOld          = "olderThan3BusinessDays"
)

// store validates the items and merges the valid ones in one transaction.
func (h *Handler) store(ctx context.Context, conn store.Connector, path, requestID string, items []wireItem) (Response, error) {
	v, err := upload.NewValidator(conn.DefaultSource, h.now())
	if err != nil {
		return Response{}, err
	}
	resp := Response{BrandCode: conn.BrandCode, Received: len(items), Items: make([]Result, len(items))}
	rows := make([]store.ImportRow, 0, len(items))
	rowItem := make([]int, 0, len(items)) // row -> item index
	counts := map[string]*store.IntakeChannel{"email": {Channel: "email"}, "sms": {Channel: "sms"}}
	for i := range items {
		res := &resp.Items[i]
		res.Index = i
		row, ch, fault := check(v, conn, &items[i])
		if fault != nil {
			res.Verdict, res.Field, res.Message = VerdictRejected, fault.Field, fault.Message
			counts[ch].Rejected++
			resp.Rejected++
			continue
		}
		row.Line = i + 1 // the item's index plus one: the events' origin is api:TOKEN:INDEX
		rows = append(rows, row.ImportRow)
		rowItem = append(rowItem, i)
		counts[ch].Valid++
		if row.unknownPlatform {
			res.Warnings = append(res.Warnings, WarningUnknownPlatform)
		}
		if row.tooOld {
			res.Warnings = append(res.Warnings, WarningTooOld)
		}
		if row.maybeMissingCC {
			res.Warnings = append(res.Warnings, WarningMaybeMissingCountryCode)
		}
	}
	chans := []store.IntakeChannel{*counts["email"], *counts["sms"]}
	out, err := h.st.ImportItems(ctx, conn.ID, path, requestID, rows, chans)
	if err != nil {
		return Response{}, err
	}
	for r, verdict := range out.Verdicts {
		resp.Items[rowItem[r]].Verdict = string(verdict)
		switch verdict {
		case store.VerdictAccepted:
			resp.Accepted++
		case store.VerdictSuperseded:
			resp.Superseded++
		case store.VerdictUnchanged:
			resp.Unchanged++
		}
	}
	return resp, nil
}

// errorBody is every error answer: {"error":{"code","message"}}, with
// "field" when one parameter or field of the request is at fault.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Field   string `json:"field,omitempty"` // the parameter or body field at fault
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeFieldError(w, status, code, "", msg)
}

// writeFieldError is writeError naming the field of the request at fault.
func writeFieldError(w http.ResponseWriter, status int, code, field, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Field, b.Error.Message = code, field, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(b) //nolint:errcheck // the client went away
}

// describe is for messages: "item 3" counts from 0, as Result.Index does.
func describe(i int) string { return fmt.Sprintf("item %d", i) }

// newRequestID is a random id for an intake request.
func newRequestID() string { return rand.Text() }
