package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Previous is the Türkiye day before now's, whatever now's zone: 23:30 UTC
// is already the next day in Türkiye (UTC+3).
func TestPrevious(t *testing.T) {
	for now, want := range map[time.Time]string{
		time.Date(2026, 3, 10, 23, 30, 0, 0, time.UTC):         "2026-03-10",
		time.Date(2026, 3, 10, 20, 30, 0, 0, time.UTC):         "2026-03-09",
		time.Date(2026, 3, 1, 0, 0, 0, 0, consent.Istanbul):    "2026-02-28",
		time.Date(2026, 1, 1, 0, 59, 0, 0, consent.Istanbul):   "2025-12-31",
		time.Date(2026, 6, 15, 23, 59, 0, 0, consent.Istanbul): "2026-06-14",
	} {
		if got := Previous(now).String(); got != want {
			t.Errorf("Previous(%s) = %s, want %s", now, got, want)
		}
	}
}

// A range lists its days, both ends included; it must end on a day that is
// over and start no earlier than the 7th day back.
func TestRange(t *testing.T) {
	now := time.Date(2026, 3, 10, 1, 0, 0, 0, consent.Istanbul) // 03-09 is the last day over; 03-03 the oldest kept
	days, err := Range(mustDay("2026-03-03"), mustDay("2026-03-09"), now)
	if err != nil || len(days) != 7 || days[0].String() != "2026-03-03" || days[6].String() != "2026-03-09" {
		t.Fatalf("the 7 days kept: %v, %v", days, err)
	}
	for i := 1; i < len(days); i++ {
		if !days[i].Start.Equal(days[i-1].End) {
			t.Fatalf("days %s and %s do not follow each other", days[i-1], days[i])
		}
	}
	if days, err := Range(mustDay("2026-03-05"), mustDay("2026-03-05"), now); err != nil || len(days) != 1 {
		t.Fatalf("one day: %v, %v", days, err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"2026-03-02", "2026-03-05", "oldest day to reconcile now is 2026-03-03"},
		{"2026-03-08", "2026-03-10", "not over yet"},
		{"2026-03-08", "2026-03-07", "ends (2026-03-07) before it starts"},
	} {
		_, err := Range(mustDay(tc.from), mustDay(tc.to), now)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s..%s: %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}
