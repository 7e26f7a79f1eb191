package consent

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"time"
)

// holidays.csv is Türkiye's public holidays 2015–2030, full days and half
// days (from 13:00); docs/holidays.md says where its dates come from and how
// to add a year.
//
//go:embed holidays.csv
var holidaysCSV []byte

// HolidayKind says how much of a day is off.
type HolidayKind string

// Holiday kinds of the data table.
const (
	FullDay HolidayKind = "full"
	HalfDay HolidayKind = "half" // afternoon off from 13:00; still a business day [guess]
)

// Calendar years the holiday table covers; outside them only weekends count.
const (
	CalendarFirstYear = 2015
	CalendarLastYear  = 2030
)

var holidays = mustParseHolidays(holidaysCSV)

func mustParseHolidays(b []byte) map[string]HolidayKind {
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		panic(fmt.Sprintf("parse embedded holidays: %v", err))
	}
	m := make(map[string]HolidayKind, len(rows))
	for _, r := range rows[1:] {
		if len(r) != 3 || (r[2] != string(FullDay) && r[2] != string(HalfDay)) {
			panic(fmt.Sprintf("parse embedded holidays: bad row %q", r))
		}
		m[r[0]] = HolidayKind(r[2])
	}
	return m
}

// Holiday returns the kind of public holiday on a calendar day in Türkiye, if any.
func Holiday(day time.Time) (HolidayKind, bool) {
	k, ok := holidays[day.In(Istanbul).Format("2006-01-02")]
	return k, ok
}

// IsBusinessDay reports whether the Türkiye calendar day holding t is a
// business day: not a Saturday, Sunday or full public holiday. Half days count.
func IsBusinessDay(t time.Time) bool {
	t = t.In(Istanbul)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	k, ok := Holiday(t)
	return !ok || k != FullDay
}

// Deadline is the last moment İYS takes a consent given at d: the end of the
// third business day after the day it was given. A consent given on Friday
// may be recorded until Wednesday 23:59:59 (Mon, Tue, Wed).
func Deadline(d Date) Date {
	t := d.t.In(Istanbul)
	day := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, Istanbul) // noon: no DST edge can move the date
	for n := 0; n < BusinessDaysMax; {
		day = day.AddDate(0, 0, 1)
		if IsBusinessDay(day) {
			n++
		}
	}
	end := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, Istanbul)
	return Date{end.Add(-time.Second)}
}

// TooOld reports whether a consent given at d is past İYS's 3-business-day
// limit when recorded at now.
func TooOld(d, now Date) bool { return now.After(Deadline(d)) }

// OldestAcceptable is the start of the earliest Türkiye day whose consents
// İYS still takes at t: a consent given before it is too old at t. It lets
// the database count records at risk with one comparison.
func OldestAcceptable(t Date) Date {
	tt := t.t.In(Istanbul)
	day := time.Date(tt.Year(), tt.Month(), tt.Day(), 12, 0, 0, 0, Istanbul)
	for i := 0; i < 60; i++ { // 3 business days never span 60 calendar days
		prev := day.AddDate(0, 0, -1)
		if TooOld(Date{prev}, t) {
			break
		}
		day = prev
	}
	return Date{time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, Istanbul)}
}
