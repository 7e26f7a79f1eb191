package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// PendingGivenBefore, which sums the kept counts of whole Türkiye days and
// counts the records of the boundary day, agrees with a full count at every
// moment: midnights in Türkiye (not UTC), mid-day, before and after all the
// records; HS_2015 and records no longer pending aside.
func TestPendingGivenBeforeAgreesWithAFullCount(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	c := install(t, s, "B1")
	var rows []ImportRow
	times := []string{"10.03.2026 00:00:00", "10.03.2026 02:59:59", "10.03.2026 03:00:00", "10.03.2026 23:59:59",
		"11.03.2026 00:00:01", "11.03.2026 12:00:00", "11.03.2026 12:00:00", "12.03.2026 21:30:00", "13.03.2026 00:00:00"}
	for i, when := range times {
		rows = append(rows, sms(t, i+1, fmt.Sprintf("+9053300000%02d", i), consent.StatusOnay, when))
	}
	old := sms(t, 100, "+905330000099", consent.StatusOnay, "01.05.2015 00:00:00")
	old.Source = consent.Source2015
	rows = append(rows, old)
	importRows(t, s, c.ID, rows...)
	// A record that left pending counts no more.
	execSQL(t, s, `UPDATE consents SET state = 'failed' WHERE recipient = '+905330000005'`)

	for _, at := range []string{"01.01.2015 00:00:00", "10.03.2026 00:00:00", "10.03.2026 03:00:00", "10.03.2026 03:00:01",
		"11.03.2026 00:00:00", "11.03.2026 00:00:02", "11.03.2026 12:00:00", "11.03.2026 12:00:01", "12.03.2026 21:29:59",
		"13.03.2026 00:00:00", "13.03.2026 00:00:01", "20.03.2026 00:00:00"} {
		tm := date(t, at).Time()
		got, err := s.PendingGivenBefore(context.Background(), c.ID, tm)
		if err != nil {
			t.Fatal(err)
		}
		want := count(t, s, `SELECT count(*) FROM consents WHERE connector_id = $1 AND state = 'pending'
			AND consent_date < $2 AND source <> 'HS_2015'`, c.ID, tm)
		if got != want {
			t.Errorf("before %s (%s UTC): %d, a full count gives %d", at, tm.UTC().Format(time.DateTime), got, want)
		}
	}
}
