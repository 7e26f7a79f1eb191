package iysclient

import (
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Every İYS path and wire constant of this package lives in this file, so
// that a correction is one edit (docs/iys-api.md's table, same order).

func pathToken() []string { return []string{"oauth2", "token"} } // [doc] both grants

// Grant types of the token endpoint [doc].
const (
	grantPassword = "password"
	grantRefresh  = "refresh_token"
)

// Lifetimes İYS documents, used when an answer leaves them out [doc].
const (
	defaultAccessTTL  = 7200 * time.Second
	defaultRefreshTTL = 14400 * time.Second
)

// ReportDateLayout is how a report day is written in the daily-change paths.
// [guess] docs/iys-api.md does not say; İYS writes its dates as YYYY-MM-DD.
const ReportDateLayout = "2006-01-02"

// brand is the prefix of every per-brand path.
func brand(iysCode, brandCode string, rest ...string) []string {
	return append([]string{"sps", iysCode, "brands", brandCode}, rest...)
}

func pathAddConsent(iys, br string) []string     { return brand(iys, br, "consents") }
func pathSubmitBulk(iys, br string) []string     { return brand(iys, br, "consents", "request") }
func pathBulkStatus(iys, br, id string) []string { return brand(iys, br, "consents", "request", id) }
func pathConsentStatus(iys, br string) []string  { return brand(iys, br, "consents", "status") }
func pathChanges(iys, br string) []string        { return brand(iys, br, "consents", "changes") }

func pathRecipientsStatus(iys, br string, rt consent.RecipientType, t consent.Type) []string {
	return brand(iys, br, "consents", string(rt), "status", string(t))
}

func pathChangeFile(iys, br string, day time.Time) []string {
	return brand(iys, br, "changes", reportDay(day), "file")
}

func pathChangeSummary(iys, br string, day time.Time, rt consent.RecipientType) []string {
	return brand(iys, br, "changes", reportDay(day), "recipients", string(rt))
}

func pathBrands(iys string) []string { return []string{"sps", iys, "brands"} }

func pathIntegratorRights(integrator, iys string) []string {
	return []string{"integrator", integrator, "sps", iys}
}

// reportDay is the Türkiye calendar day holding t: İYS's days are Istanbul days.
func reportDay(t time.Time) string { return t.In(consent.Istanbul).Format(ReportDateLayout) }

// Query parameters of the changes feed [doc].
const (
	querySource = "source"
	queryAfter  = "after"
	queryLimit  = "limit"
)

// loggableQuery lists the query keys whose values may be logged; any other
// value is redacted, so a future parameter cannot leak by accident.
var loggableQuery = map[string]bool{querySource: true, queryAfter: true, queryLimit: true}
