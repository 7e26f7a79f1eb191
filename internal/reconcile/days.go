package reconcile

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
)

// FileRetentionDays is how many finished days İYS keeps its daily change
// files and summaries for [doc: the changes are kept 7 days].
const FileRetentionDays = consent.FeedRetentionDay

// DayOf is the Türkiye day t falls in.
func DayOf(t time.Time) Day {
	t = t.In(consent.Istanbul)
	start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, consent.Istanbul)
	return Day{Start: start, End: start.AddDate(0, 0, 1)}
}

// Previous is the Türkiye day before the one now falls in: the last day
// whose file İYS has made.
func Previous(now time.Time) Day { return DayOf(now).Next(-1) }

// Next is the day n days after d (before, for a negative n).
func (d Day) Next(n int) Day {
	start := d.Start.AddDate(0, 0, n)
	return Day{Start: start, End: start.AddDate(0, 0, 1)}
}

// Range lists the days from..to (both included), checking that they can be
// reconciled at now: every one is over, and none is older than the files
// İYS keeps.
func Range(from, to Day, now time.Time) ([]Day, error) {
	oldest := Previous(now).Next(1 - FileRetentionDays)
	switch {
	case to.Start.Before(from.Start):
		return nil, fmt.Errorf("the range ends (%s) before it starts (%s)", to, from)
	case !to.Over(now):
		return nil, fmt.Errorf("%s is not over yet in Türkiye (İYS makes a day's file the day after): the last day to reconcile is %s",
			to, Previous(now))
	case from.Start.Before(oldest.Start):
		return nil, fmt.Errorf("%s is older than İYS keeps its daily files (%d days): the oldest day to reconcile now is %s",
			from, FileRetentionDays, oldest)
	}
	var days []Day
	for d := from; !d.Start.After(to.Start); d = d.Next(1) {
		days = append(days, d)
	}
	return days, nil
}

// NoRight reports whether err is İYS's refusal of a brand's daily files:
// the brand has not granted reconciliation (Mutabakat Yönetimi).
func NoRight(err error) bool {
	var apiErr *iysclient.APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden
}
