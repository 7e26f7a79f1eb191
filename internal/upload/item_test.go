package upload

import (
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// TestItemAgreesWithLine checks items against lines holding the same values:
// the same line or the same fault, field and message alike. The timestamp is
// written in the line's format and in both of the item's.
func TestItemAgreesWithLine(t *testing.T) {
	const at = "@"
	long := strings.Repeat("é", 256)
	cases := []struct {
		ch                        Channel
		addr, plat, perm, ts, ext string
	}{
		{Email, "user1" + at + "example.com", "mobileapp", "ONAY", "15.05.2025 14:23:00", "u1"},
		{Email, " U" + at + "Example.COM\t", "web", "RET", "15.05.2025 14:23:00", ""},
		{Email, "not-an-email", "web", "ONAY", "15.05.2025 14:23:00", ""},
		{Email, "ü@example.com", "web", "ONAY", "15.05.2025 14:23:00", ""},
		{Email, "user3" + at + "example.com", "", "ONAY", "15.05.2025 14:23:00", ""},
		{Email, "user4" + at + "example.com", "IYS_WEB", "ONAY", "15.05.2025 14:23:00", ""},
		{Email, "user5" + at + "example.com", "somewhere", "ONAY", "15.05.2025 14:23:00", ""},
		{Email, "user6" + at + "example.com", "hs_mobil", "onay", "15.05.2025 14:23:00", ""},
		{SMS, "905331234562", "SMS", "RET", "15.05.2025 14:23:00", "x"},
		{SMS, "05331234562", "SMS", "RET", "15.05.2025 14:23:00", ""},
		{SMS, "+90 533 123 45 62", "SMS", "RET", "15.05.2025 14:23:00", ""},
		{SMS, "5331234562", "SMS", "RET", "15.05.2025 14:23:00", ""}, // kept, flagged
		{SMS, "905331234562", "HS_2015", "ONAY", "01.05.2015 00:00:00", ""},
		{SMS, "905331234562", "HS_2015", "ONAY", "15.05.2025 14:23:00", ""},
		{SMS, "905331234562", "HS_KARAR", "ONAY", "15.05.2025 14:23:00", ""},
		{SMS, "905331234562", "hs_karar", "RET", "15.05.2025 14:23:00", ""},
		{SMS, "9053312345", "SMS", "RED", "15.05.2025 14:23:00", ""},
		{SMS, "905331234562", "SMS", "ONAY", "20.05.2025 12:05:00", ""}, // exactly 5 minutes ahead: kept
		{SMS, "905331234562", "SMS", "ONAY", "20.05.2025 12:05:01", ""}, // future
		{SMS, "905331234562", "SMS", "ONAY", "30.04.2015 23:59:59", ""}, // before the floor
		{SMS, "905331234562", "SMS", "ONAY", "01.05.2015 00:00:00", ""},
		{SMS, "905331234562", "SMS", "ONAY", "01.01.2025 10:00:00", ""}, // too old: kept, flagged
		{SMS, "905331234562", "SMS", "ONAY", "15.05.2025 14:23:00", long},
		{SMS, "905331234562", "SMS", "ONAY", "15.05.2025 14:23:00", "a\u0007b"},
		{SMS, "905331234562", "", "RED", "bad", "a\u0007b"}, // several faults: the first one
	}
	for _, c := range cases {
		line := strings.Join([]string{c.addr, c.plat, c.perm, c.ts, c.ext}, ";")
		wantLine, wantRej := one(t, line, Options{Channel: c.ch, Now: testNow})
		d, err := consent.ParseUploadTime(c.ts)
		if err != nil && c.ts != "bad" {
			t.Fatal(err)
		}
		stamps := []string{"bad"}
		if err == nil {
			stamps = []string{d.String(), d.Time().Format("2006-01-02T15:04:05Z07:00"), d.Time().UTC().Format("2006-01-02T15:04:05Z")}
		}
		for _, ts := range stamps {
			v, err := NewValidator("", testNow)
			if err != nil {
				t.Fatal(err)
			}
			got, fault := v.Check(Item{Channel: c.ch, Recipient: c.addr, Platform: c.plat, Permission: c.perm, Timestamp: ts, ExternalID: c.ext})
			switch {
			case wantRej != nil && c.ts == "bad":
				if fault == nil || fault.Field != wantRej.Field {
					t.Errorf("%q as item (%s): fault %+v, want field %s", line, ts, fault, wantRej.Field)
				}
			case wantRej != nil:
				if fault == nil || fault.Field != wantRej.Field || fault.Message != wantRej.Message {
					t.Errorf("%q as item (%s): fault %+v, want %s: %s", line, ts, fault, wantRej.Field, wantRej.Message)
				}
			case fault != nil:
				t.Errorf("%q as item (%s): fault %+v, want the line %+v", line, ts, fault, wantLine)
			default:
				wantLine.Number = 0
				if got != wantLine {
					t.Errorf("%q as item (%s): %+v, want %+v", line, ts, got, wantLine)
				}
			}
		}
	}
}

func TestItemSourceAndTimes(t *testing.T) {
	v, err := NewValidator(consent.SourceMobil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	base := Item{Channel: SMS, Recipient: "905331234562", Permission: "ONAY", Timestamp: "2025-05-15 14:23:00"}
	check := func(it Item, field string) Line {
		t.Helper()
		l, f := v.Check(it)
		switch {
		case field == "" && f != nil:
			t.Errorf("%+v: fault %+v", it, f)
		case field != "" && (f == nil || f.Field != field):
			t.Errorf("%+v: fault %+v, want field %s", it, f, field)
		}
		return l
	}
	it := base
	it.Source, it.Permission = "hs_karar", "RET"
	if l := check(it, ""); l.Source != consent.SourceKarar || l.UnknownPlatform {
		t.Errorf("source hs_karar gave %+v", l)
	}
	it.Permission = "ONAY" // HS_KARAR is a RET: the source is at fault, named as given
	check(it, FieldSource)
	it.Source, it.Timestamp = "HS_2015", "2015-05-01 00:00:00"
	if l := check(it, ""); l.Source != consent.Source2015 || l.TooOld {
		t.Errorf("HS_2015 on its date gave %+v: İYS takes it at any time", l)
	}
	it.Timestamp = "2015-05-01T00:00:01+03:00"
	check(it, FieldTimestamp)
	it.Source = "HS_NOPE"
	check(it, FieldSource)
	it.Source = "IYS_WEB"
	check(it, FieldSource)
	it.Source, it.Platform = "HS_WEB", "web"
	check(it, FieldSource)
	it = base
	it.Platform = "kiosk"
	if l := check(it, ""); l.Source != consent.SourceMobil || !l.UnknownPlatform {
		t.Errorf("unknown platform gave %+v, want the default source", l)
	}
	it.Platform = "" // neither: the empty platform's fault
	check(it, FieldPlatform)

	it = base
	it.Platform = "sms"
	want := check(it, "").ConsentDate
	for _, ts := range []string{"2025-05-15T14:23:00+03:00", "2025-05-15T11:23:00Z", "2025-05-15T11:23:00.999Z", "2025-05-15T13:23:00+02:00"} {
		it.Timestamp = ts
		if got := check(it, "").ConsentDate; !got.Equal(want) {
			t.Errorf("%s gave %v, want %v", ts, got, want)
		}
	}
	for _, ts := range []string{"", "2025-05-15T14:23:00", "15.05.2025 14:23:00", "2025-02-30 10:00:00", "2025-5-15 14:23:00",
		"2025-05-15 24:00:00", "2025-02-30T10:00:00+03:00", "1747308180"} {
		it.Timestamp = ts
		check(it, FieldTimestamp)
	}
	if _, err := NewValidator(consent.Source2015, testNow); err == nil {
		t.Error("HS_2015 taken as default source")
	}
}

// An item's phone may be written in E.164 as well as the file's digits: the
// same consent either way. 10 digits starting with 5 are kept and flagged.
func TestItemPhoneAsPeopleWriteIt(t *testing.T) {
	v, err := NewValidator("", testNow)
	if err != nil {
		t.Fatal(err)
	}
	check := func(phone string) (Line, *Fault) {
		return v.Check(Item{Channel: SMS, Recipient: phone, Platform: "sms", Permission: "ONAY", Timestamp: "2025-05-15 14:23:00"})
	}
	want, f := check("905331234562")
	if f != nil {
		t.Fatal(f)
	}
	for _, p := range []string{"+905331234562", " +905331234562\t"} {
		if got, f := check(p); f != nil || got != want {
			t.Errorf("%q: %+v %+v, want %+v", p, got, f, want)
		}
	}
	for _, p := range []string{"5331234562", "+5331234562"} {
		if got, f := check(p); f != nil || got.Recipient != "+5331234562" || !got.MaybeMissingCountryCode {
			t.Errorf("%q: %+v %+v, want kept as +5331234562 and flagged", p, got, f)
		}
	}
	if want.MaybeMissingCountryCode {
		t.Error("905331234562 flagged")
	}
	for _, p := range []string{"++905331234562", "+0533 123 45 62", "+90533123456", "+"} {
		if _, f := check(p); f == nil || f.Field != FieldPhone {
			t.Errorf("%q: fault %+v, want phone", p, f)
		}
	}
}
