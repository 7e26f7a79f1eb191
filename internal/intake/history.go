package intake

import (
	"encoding/json"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/history"
)

// history is GET /v1/connectors/{brandCode}/consents/{recipient}/history[?type=T]:
// the story of one recipient's consents (internal/history), as `iys-sync
// history --json` prints it. A token that may write to the connector may read
// it. The logs never name the recipient.
func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	x := h.exchange(w, r, "history request")
	conn, _, ok := h.admit(x, http.MethodGet, http.MethodHead)
	if !ok {
		return
	}
	rec, err := history.Recipient(r.PathValue("recipient"))
	if err != nil {
		x.failField(http.StatusBadRequest, "bad_recipient", "recipient", "recipient "+err.Error())
		return
	}
	typ := r.URL.Query().Get("type")
	if typ != "" && !slices.Contains(consent.Types, consent.Type(typ)) {
		x.failField(http.StatusBadRequest, "bad_type", "type", "type: want MESAJ, ARAMA or EPOSTA")
		return
	}
	evs, err := h.st.History(r.Context(), conn.ID, rec, typ)
	if err != nil {
		x.dbFailed(err, "nothing was read", "the history could not be read")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // personal data, as the permission check's
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(history.Of(rec, evs)); err != nil {
		x.log.Debug("intake: write history", zap.Error(err))
	}
}
