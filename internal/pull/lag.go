package pull

import (
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Lag levels of the watchdog.
const (
	LagOK      = 0
	LagWarning = 1 // over WarnAfter: pull soon, the feed keeps only 7 days
	LagLost    = 2 // over the feed's retention: changes are lost for good
)

// WarnAfter is when a connector's pull lag becomes a warning; at the feed's
// retention (7 days) changes are lost and must come from the daily files.
const WarnAfter = 5 * 24 * time.Hour

// Lag tells how long ago the citizens' changes were last pulled (since
// installation when never) and how bad that is.
func Lag(lastPulled, installed, now time.Time) (time.Duration, int) {
	since := lastPulled
	if since.IsZero() {
		since = installed
	}
	lag := now.Sub(since)
	switch {
	case lag > consent.FeedRetentionDay*24*time.Hour:
		return lag, LagLost
	case lag > WarnAfter:
		return lag, LagWarning
	}
	return lag, LagOK
}

// LagMessage says what a lag level means for an operator; "" when fine.
func LagMessage(level int) string {
	switch level {
	case LagWarning:
		return "the last pull from İYS is over 5 days old: İYS's changes feed keeps only 7 days"
	case LagLost:
		return "the last pull from İYS is over 7 days old: citizens' changes were lost from the feed; recover them with reconcile from İYS's daily change files"
	}
	return ""
}
