package pull

import (
	"testing"
	"time"
)

func TestLag(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	installed := now.Add(-30 * 24 * time.Hour)
	tests := []struct {
		last  time.Time
		level int
	}{
		{now.Add(-time.Hour), LagOK},
		{now.Add(-5*24*time.Hour + time.Minute), LagOK},
		{now.Add(-5*24*time.Hour - time.Minute), LagWarning},
		{now.Add(-7*24*time.Hour - time.Minute), LagLost},
		{time.Time{}, LagLost}, // never pulled: counted from installation, 30 days ago
	}
	for _, tt := range tests {
		if _, got := Lag(tt.last, installed, now); got != tt.level {
			t.Errorf("Lag(last %s) = %d, want %d", tt.last, got, tt.level)
		}
	}
	if _, got := Lag(time.Time{}, now.Add(-time.Hour), now); got != LagOK {
		t.Errorf("a connector installed an hour ago and never pulled: %d, want OK", got)
	}
	if LagMessage(LagLost) == "" || LagMessage(LagOK) != "" {
		t.Error("messages")
	}
}
