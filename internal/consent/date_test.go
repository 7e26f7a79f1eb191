package consent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseUploadTime(t *testing.T) {
	good := map[string]string{
		"15.05.2025 14:23:00": "2025-05-15 14:23:00",
		"01.01.2020 00:00:00": "2020-01-01 00:00:00",
		"29.02.2024 23:59:59": "2024-02-29 23:59:59",
	}
	for in, want := range good {
		d, err := ParseUploadTime(in)
		if err != nil {
			t.Errorf("ParseUploadTime(%q): %v", in, err)
			continue
		}
		if d.String() != want {
			t.Errorf("ParseUploadTime(%q) = %s, want %s", in, d, want)
		}
	}
	for _, in := range []string{"1.5.2025 14:23:00", "15.05.2025 14:23", "2025-05-15 14:23:00", "31.02.2025 10:00:00",
		"15.05.2025 24:00:00", "15.05.2025 9:05:10", "15.05.2025 14:60:00", "15.05.2025 14:23:60", "00.05.2025 10:00:00",
		"15.13.2025 10:00:00", "29.02.2025 10:00:00", "15.05.2025T14:23:00", " 15.05.2025 14:23:00", "15/05/2025 14:23:00",
		"15.05.2025 14:23:00 ", "１5.05.2025 14:23:00", "27.03.2016 03:30:00" /* DST gap in Istanbul */} {
		if d, err := ParseUploadTime(in); err == nil {
			t.Errorf("ParseUploadTime(%q) = %s, want an error", in, d)
		}
	}
}

// İYS dates are Türkiye time whatever the process's zone: a UTC moment is
// written 3 hours later, never as UTC.
func TestDateIsIstanbulTime(t *testing.T) {
	d := NewDate(time.Date(2025, 5, 15, 11, 23, 0, 0, time.UTC))
	if got := d.String(); got != "2025-05-15 14:23:00" {
		t.Fatalf("String() = %s, want 2025-05-15 14:23:00", got)
	}
	b, _ := json.Marshal(Consent{ConsentDate: d})
	if !strings.Contains(string(b), `"consentDate":"2025-05-15 14:23:00"`) {
		t.Fatalf("JSON = %s", b)
	}
	var back Consent
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.ConsentDate.Equal(d) {
		t.Fatalf("round trip = %s, want %s", back.ConsentDate, d)
	}
	// Before September 2016 Türkiye kept summer time: winter dates are GMT+2.
	w := NewDate(time.Date(2016, 1, 10, 10, 0, 0, 0, time.UTC))
	if w.String() != "2016-01-10 12:00:00" {
		t.Fatalf("winter 2016 = %s, want 2016-01-10 12:00:00", w)
	}
}

func TestDateJSONRejectsOtherFormats(t *testing.T) {
	for _, s := range []string{`"2025-05-15T14:23:00"`, `"2025-05-15 14:23:00 "`, `"2025-05-15 14:23"`, `"15.05.2025 14:23:00"`, `12`} {
		var d Date
		if err := json.Unmarshal([]byte(s), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %s, want an error", s, d)
		}
	}
	var d Date
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || !d.IsZero() {
		t.Errorf("Unmarshal(null) = %v, %v", d, err)
	}
}

func TestDateScanValue(t *testing.T) {
	d := NewDate(time.Date(2025, 5, 15, 14, 23, 0, 500, Istanbul))
	v, err := d.Value()
	if err != nil {
		t.Fatal(err)
	}
	var back Date
	if err := back.Scan(v.(time.Time).UTC()); err != nil {
		t.Fatal(err)
	}
	if back.String() != "2025-05-15 14:23:00" {
		t.Fatalf("scan = %s", back)
	}
	if err := back.Scan("2025"); err == nil {
		t.Fatal("scanning a string: want an error")
	}
}
