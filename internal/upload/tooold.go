package upload

import (
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// tooOldCutoff returns the first calendar day (Istanbul, as yyyymmdd) whose
// consents are not too old at now. consent.TooOld depends only on the day a
// consent was given and grows with it, so one cutoff per file answers every
// line without recomputing business days (which costs several allocations).
func tooOldCutoff(now consent.Date) int {
	t := now.Time().In(consent.Istanbul)
	day := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, consent.Istanbul) // noon: no DST edge moves the date
	// A holiday run plus a weekend never spans 60 days; the bound only keeps a
	// broken calendar from looping.
	for i := 0; i < 60; i++ {
		prev := day.AddDate(0, 0, -1)
		if consent.TooOld(consent.NewDate(prev), now) {
			break
		}
		day = prev
	}
	return dayNumber(day)
}

// dayNumber is t's calendar day in Istanbul as yyyymmdd, which orders like the days.
func dayNumber(t time.Time) int {
	y, m, d := t.In(consent.Istanbul).Date()
	return y*10000 + int(m)*100 + d
}
