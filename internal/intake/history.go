package intake

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/history"
	"github.com/iys-sync/iys-sync/internal/store"
)

// history is GET /v1/connectors/{brandCode}/consents/{recipient}/history[?type=T]:
// the story of one recipient's consents (internal/history), as `iys-sync
// history --json` prints it. A token that may write to the connector may read
// it. The logs never name the recipient.
func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	brand := r.PathValue("brandCode")
	log := h.log.With(zap.String("brand_code", brand))
	fail := func(status int, code, msg string, fields ...zap.Field) {
		log.Warn("intake history refused", append([]zap.Field{zap.Int("status", status), zap.String("code", code)}, fields...)...)
		writeError(w, status, code, msg)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	if err := checkBrandCode(brand); err != nil {
		fail(http.StatusBadRequest, "bad_brand_code", err.Error())
		return
	}
	client := zap.String("client", r.RemoteAddr)
	tok := h.authenticate(r)
	if tok == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="iys-sync intake"`)
		fail(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required: Authorization: Bearer <token>", client)
		return
	}
	if !tok.mayWrite(brand) {
		fail(http.StatusForbidden, "forbidden", "this token may not read this connector", client, zap.String("token", tok.name))
		return
	}
	rec, err := history.Recipient(r.PathValue("recipient"))
	if err != nil {
		fail(http.StatusBadRequest, "bad_recipient", "recipient "+err.Error())
		return
	}
	typ := r.URL.Query().Get("type")
	if typ != "" && !slices.Contains(consent.Types, consent.Type(typ)) {
		fail(http.StatusBadRequest, "bad_type", "type: want MESAJ, ARAMA or EPOSTA")
		return
	}
	conn, err := h.st.Connector(r.Context(), brand)
	if errors.Is(err, store.ErrNoConnector) {
		fail(http.StatusNotFound, "unknown_connector", "no connector is installed for this brand code")
		return
	}
	var evs []store.RecipientEvent
	if err == nil {
		evs, err = h.st.History(r.Context(), conn.ID, rec, typ)
	}
	if err != nil {
		if store.Transient(err) {
			w.Header().Set("Retry-After", retryUnavailable)
			fail(http.StatusServiceUnavailable, "unavailable", "the database is unavailable for now: ask again", zap.Error(err))
			return
		}
		log.Error("intake history failed", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", "the history could not be read")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(history.Of(rec, evs)); err != nil {
		log.Debug("intake: write history", zap.Error(err))
	}
}
