package consent

import (
	"testing"
	"time"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, Istanbul) }

// One check per year of the table: a bayram day (moves with the Hijri calendar,
// so it is the part most likely to be wrong), a fixed holiday, and a half day.
func TestHolidayTablePerYear(t *testing.T) {
	ramazanDay1 := map[int]string{
		2015: "2015-07-17", 2016: "2016-07-05", 2017: "2017-06-25", 2018: "2018-06-15",
		2019: "2019-06-04", 2020: "2020-05-24", 2021: "2021-05-13", 2022: "2022-05-02",
		2023: "2023-04-21", 2024: "2024-04-10", 2025: "2025-03-30", 2026: "2026-03-20",
		2027: "2027-03-09", 2028: "2028-02-26", 2029: "2029-02-14", 2030: "2030-02-04",
	}
	kurbanDay1 := map[int]string{
		2015: "2015-09-24", 2016: "2016-09-12", 2017: "2017-09-01", 2018: "2018-08-21",
		2019: "2019-08-11", 2020: "2020-07-31", 2021: "2021-07-20", 2022: "2022-07-09",
		2023: "2023-06-28", 2024: "2024-06-16", 2025: "2025-06-06", 2026: "2026-05-27",
		2027: "2027-05-16", 2028: "2028-05-05", 2029: "2029-04-24", 2030: "2030-04-13",
	}
	for y := CalendarFirstYear; y <= CalendarLastYear; y++ {
		for name, ds := range map[string]string{"ramazan": ramazanDay1[y], "kurban": kurbanDay1[y]} {
			d, err := time.ParseInLocation("2006-01-02", ds, Istanbul)
			if err != nil {
				t.Fatalf("%d %s: %v", y, name, err)
			}
			if k, ok := Holiday(d); !ok || k != FullDay {
				t.Errorf("%s: %s day 1 = (%q, %v), want a full holiday", ds, name, k, ok)
			}
			// An eve that falls on a full holiday (1 May 2022, 23 April 2029) stays full.
			eve := d.AddDate(0, 0, -1)
			wantEve := HalfDay
			if md := eve.Format("01-02"); md == "05-01" || md == "04-23" {
				wantEve = FullDay
			}
			if k, ok := Holiday(eve); !ok || k != wantEve {
				t.Errorf("%s: the eve of %s = (%q, %v), want %q", ds, name, k, ok, wantEve)
			}
		}
		if k, ok := Holiday(day(y, time.October, 29)); !ok || k != FullDay {
			t.Errorf("%d-10-29 Republic Day = (%q, %v), want full", y, k, ok)
		}
		if k, ok := Holiday(day(y, time.October, 28)); !ok || k != HalfDay {
			t.Errorf("%d-10-28 = (%q, %v), want a half day", y, k, ok)
		}
		_, july15 := Holiday(day(y, time.July, 15))
		if want := y >= 2017; july15 != want {
			t.Errorf("%d-07-15 holiday = %v, want %v (Law 6752, from 2017)", y, july15, want)
		}
	}
}

func TestIsBusinessDay(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"an ordinary Wednesday", day(2025, time.May, 14), true},
		{"Saturday", day(2025, time.May, 17), false},
		{"Sunday", day(2025, time.May, 18), false},
		{"19 May, a full holiday on a Monday", day(2025, time.May, 19), false},
		{"Kurban eve, a half day, counts", day(2025, time.June, 5), true},
		{"Kurban day 1", day(2025, time.June, 6), false},
		{"28 October afternoon off still counts", day(2025, time.October, 28), true},
		{"31 December is not a public holiday", day(2025, time.December, 31), true},
		{"late evening in Istanbul is still that day although UTC agrees", time.Date(2025, time.May, 16, 20, 59, 0, 0, time.UTC), true},
		{"01:00 Istanbul on Saturday is Friday 22:00 UTC", time.Date(2025, time.May, 16, 22, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		if got := IsBusinessDay(tt.at); got != tt.want {
			t.Errorf("%s: IsBusinessDay(%s) = %v, want %v", tt.name, tt.at, got, tt.want)
		}
	}
}

func TestDeadline(t *testing.T) {
	at := func(y int, m time.Month, d, h, mi int) Date {
		return NewDate(time.Date(y, m, d, h, mi, 0, 0, Istanbul))
	}
	tests := []struct {
		name  string
		given Date
		want  Date
	}{
		{"Monday → Thursday end", at(2025, time.May, 12, 9, 0), at(2025, time.May, 15, 23, 59).Add(59 * time.Second)},
		{"Friday → Wednesday end, skipping the weekend", at(2025, time.May, 9, 18, 0), at(2025, time.May, 14, 23, 59).Add(59 * time.Second)},
		{"Friday before 19 May (Monday) → Thursday end", at(2025, time.May, 16, 18, 0), at(2025, time.May, 22, 23, 59).Add(59 * time.Second)},
		{"Saturday → Wednesday end", at(2025, time.May, 10, 12, 0), at(2025, time.May, 14, 23, 59).Add(59 * time.Second)},
		{"before Kurban 2025 (6–9 June, Fri–Mon) → Wednesday 11th end", at(2025, time.June, 4, 12, 0), at(2025, time.June, 11, 23, 59).Add(59 * time.Second)},
	}
	for _, tt := range tests {
		if got := Deadline(tt.given); !got.Equal(tt.want) {
			t.Errorf("%s: Deadline(%s) = %s, want %s", tt.name, tt.given, got, tt.want)
		}
		if TooOld(tt.given, tt.want) {
			t.Errorf("%s: TooOld at the deadline itself", tt.name)
		}
		if !TooOld(tt.given, tt.want.Add(time.Second)) {
			t.Errorf("%s: not TooOld one second after the deadline", tt.name)
		}
	}
}

func TestOldestAcceptable(t *testing.T) {
	at := func(y int, m time.Month, d, h int) Date { return NewDate(time.Date(y, m, d, h, 0, 0, 0, Istanbul)) }
	tests := []struct{ now, want Date }{
		{at(2025, time.May, 15, 12), at(2025, time.May, 12, 0)}, // Thursday: back to Monday
		{at(2025, time.May, 14, 12), at(2025, time.May, 9, 0)},  // Wednesday: Friday, over the weekend
		{at(2025, time.May, 22, 12), at(2025, time.May, 16, 0)}, // Thursday after 19 May (Monday, a holiday)
	}
	for _, tt := range tests {
		got := OldestAcceptable(tt.now)
		if !got.Equal(tt.want) {
			t.Errorf("OldestAcceptable(%s) = %s, want %s", tt.now, got, tt.want)
		}
		if TooOld(got, tt.now) || !TooOld(got.Add(-time.Second), tt.now) {
			t.Errorf("OldestAcceptable(%s) = %s is not the boundary", tt.now, got)
		}
	}
}
