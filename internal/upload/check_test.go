package upload

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// rule is one line of input and what docs/upload-format.md says of it.
type rule struct {
	name    string
	sms     bool
	line    string
	field   string   // "" when the line is valid
	words   []string // that the message must hold (case-insensitive)
	missing []string // that the message must not hold: the address, the line
}

const (
	okEmail = "user@example.com; mobileapp; ONAY; 15.05.2025 14:23:00; user123"
	okSMS   = "905331234562; SMS; RET; 15.05.2025 14:23:00; user456"
)

func emailLine(addr string) string { return addr + "; web; ONAY; 15.05.2025 14:23:00" }
func smsLine(phone string) string  { return phone + "; sms; ONAY; 15.05.2025 14:23:00" }
func withPlatform(p string) string { return "user@example.com;" + p + "; ONAY; 15.05.2025 14:23:00" }
func withStatus(p string) string   { return "user@example.com; web;" + p + "; 15.05.2025 14:23:00" }
func withTime(ts string) string    { return "user@example.com; web; ONAY;" + ts }
func withID(id string) string      { return "user@example.com; web; ONAY; 15.05.2025 14:23:00;" + id }

func at(d consent.Date) string { return d.Time().In(consent.Istanbul).Format("02.01.2006 15:04:05") }

func rules() []rule {
	phoneWords := []string{"905331234562"} // the expected shape is shown
	return []rule{
		// Line structure.
		{name: "4 fields", line: "user@example.com; web; ONAY; 15.05.2025 14:23:00"},
		{name: "5 fields", line: okEmail},
		{name: "3 fields", line: "user@example.com; web; ONAY", field: FieldLine, words: []string{"3 fields", "4 or 5"}, missing: []string{"user@example.com"}},
		{name: "6 fields", line: okEmail + "; extra", field: FieldLine, words: []string{"6 fields", "4 or 5"}},
		{name: "1 field, not on the first line", line: "hello 1", field: FieldLine, words: []string{"1 fields"}},
		{name: "comma separated", line: "user@example.com, web, ONAY, 15.05.2025 14:23:00", field: FieldLine, words: []string{"4 or 5", ";"}},
		{name: "fifth field empty is no external id", line: okEmail[:strings.LastIndex(okEmail, ";")] + ";"},
		{name: "fifth field blank is no external id", line: okEmail[:strings.LastIndex(okEmail, ";")] + "; \t "},
		{name: "invalid UTF-8", line: "user@example.com; web; ONAY; 15.05.2025 14:23:00; id\xff", field: FieldLine, words: []string{"UTF-8"}},
		{name: "invalid UTF-8 beats a bad email", line: "us\xc3er; web; ONAY; 15.05.2025 14:23:00", field: FieldLine, words: []string{"UTF-8"}},
		{name: "spaces and tabs around fields", line: " \tuser@example.com\t;\tweb ;ONAY\t; 15.05.2025 14:23:00 ;  u1  "},
		{name: "a non-breaking space is not trimmed around the permission", line: withStatus("\u00a0ONAY"), field: FieldPermission},

		// Email address.
		{name: "email upper case", line: emailLine("User.Name@Example.COM")},
		{name: "email allowed characters", line: emailLine("a.b_c%d+e-f@sub-1.example.co")},
		{name: "email empty", line: emailLine(""), field: FieldEmail, words: []string{"empty"}},
		{name: "email no @", line: emailLine("user.example.com"), field: FieldEmail, words: []string{"@"}, missing: []string{"user.example.com"}},
		{name: "email two @", line: emailLine("a@b@example.com"), field: FieldEmail, words: []string{"one @"}, missing: []string{"a@b@example.com"}},
		{name: "email empty local part", line: emailLine("@example.com"), field: FieldEmail, words: []string{"local"}},
		{name: "email domain without dot", line: emailLine("user@localhost"), field: FieldEmail, words: []string{"dot"}, missing: []string{"localhost"}},
		{name: "email one-letter tld", line: emailLine("user@example.c"), field: FieldEmail, words: []string{"top-level"}},
		{name: "email digit tld", line: emailLine("user@example.c0m"), field: FieldEmail, words: []string{"top-level"}},
		{name: "email space inside", line: emailLine("us er@example.com"), field: FieldEmail, words: []string{"spaces"}},
		{name: "email Turkish letter in local part", line: emailLine("ayşe@example.com"), field: FieldEmail, words: []string{"Turkish"}, missing: []string{"ayşe"}},
		{name: "email Turkish capital İ (must not fold into i)", line: emailLine("İNFO@EXAMPLE.COM"), field: FieldEmail, words: []string{"Turkish"}},
		{name: "email Kelvin sign (must not fold into k)", line: emailLine("\u212Aaan@example.com"), field: FieldEmail},
		{name: "email Turkish letter in domain", line: emailLine("user@örnek.com"), field: FieldEmail, words: []string{"domain"}},
		{name: "email local part of 64", line: emailLine(strings.Repeat("a", 64) + "@example.com")},
		{name: "email local part of 65", line: emailLine(strings.Repeat("a", 65) + "@example.com"), field: FieldEmail, words: []string{"64"}},
		{name: "email leading dot", line: emailLine(".user@example.com"), field: FieldEmail, words: []string{"dot"}},
		{name: "email trailing dot", line: emailLine("user.@example.com"), field: FieldEmail, words: []string{"dot"}},
		{name: "email doubled dot", line: emailLine("us..er@example.com"), field: FieldEmail, words: []string{"dot"}},
		{name: "email empty domain label", line: emailLine("user@example..com"), field: FieldEmail, words: []string{"label"}},
		{name: "email label starting with -", line: emailLine("user@-example.com"), field: FieldEmail, words: []string{"-"}},
		{name: "email label ending with -", line: emailLine("user@example-.com"), field: FieldEmail, words: []string{"-"}},
		{name: "email underscore in domain", line: emailLine("user@exa_mple.com"), field: FieldEmail, words: []string{"domain"}},
		{name: "email bad character in local part", line: emailLine("us!er@example.com"), field: FieldEmail, words: []string{"ASCII"}},
		{name: "email of 254", line: emailLine(strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com")},
		{name: "email of 255", line: emailLine(strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"), field: FieldEmail, words: []string{"254"}},
		{name: "a phone in an email file", line: emailLine("905331234562"), field: FieldEmail},

		// Phone.
		{name: "phone Türkiye", sms: true, line: smsLine("905331234562")},
		{name: "phone other country, 10 digits", sms: true, line: smsLine("1234567890")},
		{name: "phone other country, 15 digits", sms: true, line: smsLine("491511234567890")},
		{name: "phone empty", sms: true, line: smsLine(""), field: FieldPhone, words: append([]string{"empty"}, phoneWords...)},
		{name: "phone with +", sms: true, line: smsLine("+905331234562"), field: FieldPhone, words: append([]string{"digits only", "+"}, phoneWords...), missing: []string{"+905331234562"}},
		{name: "phone with spaces", sms: true, line: smsLine("90 533 123 45 62"), field: FieldPhone, words: phoneWords, missing: []string{"90 533"}},
		{name: "phone with dashes", sms: true, line: smsLine("90-533-123-4562"), field: FieldPhone, words: phoneWords},
		{name: "phone with brackets", sms: true, line: smsLine("(90)5331234562"), field: FieldPhone, words: phoneWords},
		{name: "phone with dots", sms: true, line: smsLine("90.533.123.4562"), field: FieldPhone, words: phoneWords},
		{name: "phone starting with 0", sms: true, line: smsLine("05551112233"), field: FieldPhone, words: append([]string{"country code"}, phoneWords...), missing: []string{"05551112233"}},
		{name: "phone 90 with 11 digits", sms: true, line: smsLine("90533123456"), field: FieldPhone, words: append([]string{"12 digits"}, phoneWords...)},
		{name: "phone 90 with 13 digits", sms: true, line: smsLine("9053312345621"), field: FieldPhone, words: []string{"12 digits"}},
		{name: "phone 9 digits", sms: true, line: smsLine("123456789"), field: FieldPhone, words: []string{"10 to 15"}},
		{name: "phone 16 digits", sms: true, line: smsLine("1234567890123456"), field: FieldPhone, words: []string{"10 to 15"}},
		{name: "phone Arabic-Indic digits", sms: true, line: smsLine("٩٠٥٣٣١٢٣٤٥٦٢"), field: FieldPhone},
		{name: "an email in an SMS file", sms: true, line: smsLine("user@example.com"), field: FieldPhone, missing: []string{"user@example.com"}},
		{name: "phone of 10 digits starting with 5 is kept (flagged)", sms: true, line: smsLine("5331234562")},

		// Platform.
		{name: "platform empty", line: withPlatform(""), field: FieldPlatform, words: []string{"empty"}},
		{name: "platform only spaces", line: withPlatform("   "), field: FieldPlatform, words: []string{"empty"}},
		{name: "platform IYS_WEB", line: withPlatform("IYS_WEB"), field: FieldPlatform, words: []string{"IYS_"}},
		{name: "platform iys_mobil", line: withPlatform("iys_mobil"), field: FieldPlatform, words: []string{"IYS_"}},
		{name: "platform Iys_anything", line: withPlatform("Iys_anything"), field: FieldPlatform},
		{name: "platform IYS without underscore is only unknown", line: withPlatform("IYS")},
		{name: "platform unknown", line: withPlatform("kiosk")},

		// Permission.
		{name: "permission ONAY", line: withStatus("ONAY")},
		{name: "permission RET", line: withStatus("RET")},
		{name: "permission onay", line: withStatus("onay"), field: FieldPermission, words: []string{"ONAY or RET", "capitals"}},
		{name: "permission Onay", line: withStatus("Onay"), field: FieldPermission},
		{name: "permission RED", line: withStatus("RED"), field: FieldPermission},
		{name: "permission YES", line: withStatus("YES"), field: FieldPermission},
		{name: "permission empty", line: withStatus(""), field: FieldPermission},

		// Timestamp.
		{name: "timestamp one-digit day and month", line: withTime("1.5.2025 14:23:00"), field: FieldTimestamp, words: []string{"dd.MM.yyyy HH:mm:ss"}},
		{name: "timestamp without seconds", line: withTime("15.05.2025 14:23"), field: FieldTimestamp, words: []string{"dd.MM.yyyy HH:mm:ss"}},
		{name: "timestamp ISO", line: withTime("2025-05-15 14:23:00"), field: FieldTimestamp, words: []string{"dd.MM.yyyy HH:mm:ss"}},
		{name: "timestamp 31 February", line: withTime("31.02.2025 10:00:00"), field: FieldTimestamp, words: []string{"real", "dd.MM.yyyy HH:mm:ss"}},
		{name: "timestamp 24:00:00", line: withTime("15.05.2025 24:00:00"), field: FieldTimestamp, words: []string{"real"}},
		{name: "timestamp 12-hour clock", line: withTime("15.05.2025 2:23:00 PM"), field: FieldTimestamp},
		{name: "timestamp empty", line: withTime(""), field: FieldTimestamp},
		{name: "timestamp 29 February of a leap year", line: withTime("29.02.2024 10:00:00")},
		{name: "timestamp at the floor", line: withTime("01.05.2015 00:00:00")},
		{name: "timestamp a second before the floor", line: withTime("30.04.2015 23:59:59"), field: FieldTimestamp, words: []string{"01.05.2015"}},
		{name: "timestamp in 2014", line: withTime("15.05.2014 14:23:00"), field: FieldTimestamp, words: []string{"01.05.2015"}},
		{name: "timestamp now", line: withTime(at(testNow))},
		{name: "timestamp 5 minutes ahead", line: withTime(at(testNow.Add(5 * time.Minute)))},
		{name: "timestamp 5 minutes and 1 second ahead", line: withTime(at(testNow.Add(5*time.Minute + time.Second))), field: FieldTimestamp, words: []string{"future"}},
		{name: "timestamp next year", line: withTime("15.05.2026 14:23:00"), field: FieldTimestamp, words: []string{"future"}},

		// The rules tied to a source, İYS's, applied at once.
		{name: "HS_2015 on its date", line: "user@example.com; HS_2015; ONAY; 01.05.2015 00:00:00"},
		{name: "HS_2015 a second later", line: "user@example.com; hs_2015; ONAY; 01.05.2015 00:00:01", field: FieldTimestamp,
			words: []string{"01.05.2015 00:00:00", "HS_2015", "before 1 May 2015"}},
		{name: "HS_2015 recent", line: "user@example.com; HS_2015; RET; 15.05.2025 14:23:00", field: FieldTimestamp, words: []string{"HS_2015"}},
		{name: "HS_2015 before the floor says HS_2015's rule", line: "user@example.com; HS_2015; ONAY; 15.05.2014 14:23:00", field: FieldTimestamp,
			words: []string{"with HS_2015"}},
		{name: "HS_KARAR RET", line: "user@example.com; hs_karar; RET; 15.05.2025 14:23:00"},
		{name: "HS_KARAR ONAY", line: "user@example.com; HS_KARAR; ONAY; 15.05.2025 14:23:00", field: FieldPlatform,
			words: []string{"HS_KARAR", "RET only", "platform where it was given"}},
		{name: "order: HS_KARAR ONAY before a future timestamp", line: "user@example.com; HS_KARAR; ONAY; 15.05.2026 14:23:00", field: FieldPlatform},

		// External id.
		{name: "external id Unicode", line: withID("kullanıcı-42")},
		{name: "external id of 255 characters, 510 bytes", line: withID(strings.Repeat("ş", 255))},
		{name: "external id of 256 characters", line: withID(strings.Repeat("a", 256)), field: FieldExternalID, words: []string{"256", "255"}},
		{name: "external id with a tab inside", line: withID("a\tb"), field: FieldExternalID, words: []string{"control"}},
		{name: "external id with a control character", line: withID("a\x01b"), field: FieldExternalID, words: []string{"control"}},
		{name: "external id with DEL", line: withID("a\x7fb"), field: FieldExternalID},
		{name: "external id with a C1 control", line: withID("a\u0085b"), field: FieldExternalID},
		{name: "external id with NUL", line: withID("a\x00b"), field: FieldExternalID},

		// One fault reported, the first in the order of the format.
		{name: "order: line before email", line: "bad; web; ONAY", field: FieldLine},
		{name: "order: email before platform", line: "bad; ; ONAY; 15.05.2025 14:23:00", field: FieldEmail},
		{name: "order: phone before platform", sms: true, line: "0533; IYS_WEB; ONAY; 15.05.2025 14:23:00", field: FieldPhone},
		{name: "order: platform before permission", line: "user@example.com; IYS_WEB; yes; 15.05.2025 14:23:00", field: FieldPlatform},
		{name: "order: permission before timestamp", line: "user@example.com; web; yes; 2025", field: FieldPermission},
		{name: "order: timestamp before external id", line: "user@example.com; web; ONAY; 2025; a\x01", field: FieldTimestamp},
		{name: "order: everything wrong", line: "x;;y;z;\x01", field: FieldEmail},
	}
}

// TestRules runs every rule of docs/upload-format.md on a line of its own, as the
// second line of a file so that the header rule stays out of it.
func TestRules(t *testing.T) {
	for _, r := range rules() {
		t.Run(r.name, func(t *testing.T) {
			opts, first := emailOpts(), okEmail
			if r.sms {
				opts, first = smsOpts(), okSMS
			}
			res := scanAll(t, first+"\n"+r.line+"\n", opts)
			if res.counts.Lines != 2 {
				t.Fatalf("counts %+v, want 2 lines", res.counts)
			}
			if r.field == "" {
				if len(res.rejs) != 0 {
					t.Fatalf("rejected: %v", res.rejs[0])
				}
				return
			}
			if len(res.rejs) != 1 {
				t.Fatalf("valid (%+v), want a rejection in %s", res.lines[1], r.field)
			}
			rej := res.rejs[0]
			if rej.Field != r.field || rej.Line != 2 || rej.Path != "f.txt" {
				t.Fatalf("rejection %q, want field %s on line 2 of f.txt", rej.Error(), r.field)
			}
			msg := strings.ToLower(rej.Message)
			for _, w := range r.words {
				if !strings.Contains(msg, strings.ToLower(w)) {
					t.Errorf("message %q does not say %q", rej.Message, w)
				}
			}
			for _, w := range r.missing {
				if strings.Contains(rej.Message, w) {
					t.Errorf("message %q echoes %q", rej.Message, w)
				}
			}
			if strings.Contains(rej.Message, strings.TrimSpace(r.line)) {
				t.Errorf("message %q echoes the whole line", rej.Message)
			}
		})
	}
}

func TestValidLineValues(t *testing.T) {
	l, rej := one(t, " User.Name@Example.COM ; EMAIL ; RET ; 16.05.2025 09:05:10 ;  ext 1 ", emailOpts())
	if rej != nil {
		t.Fatal(rej)
	}
	want := Line{Number: 1, Recipient: "user.name@example.com", Status: consent.StatusRet,
		ConsentDate: istanbul(2025, time.May, 16, 9, 5, 10), Source: consent.SourceEposta, ExternalID: "ext 1"}
	if !l.ConsentDate.Equal(want.ConsentDate) {
		t.Errorf("date %s, want %s", l.ConsentDate, want.ConsentDate)
	}
	l.ConsentDate = want.ConsentDate
	if l != want {
		t.Errorf("line %+v\nwant %+v", l, want)
	}
	// Türkiye time: 09:05:10 in Istanbul is 06:05:10 UTC.
	if got := l.ConsentDate.Time().UTC().Format(time.DateTime); got != "2025-05-16 06:05:10" {
		t.Errorf("UTC %s, want 2025-05-16 06:05:10", got)
	}

	// Tabs and spaces around every field, before and after, are ignored.
	l, rej = one(t, "\t 905331234562 \t;\t sms\t ;\tRET \t;\t15.05.2025 14:23:00\t; \tid 7\t ", smsOpts())
	if rej != nil || l.Recipient != "+905331234562" || l.Source != consent.SourceMesaj || l.UnknownPlatform ||
		l.Status != consent.StatusRet || l.ExternalID != "id 7" {
		t.Fatalf("tabs and spaces: line %+v, rejection %v", l, rej)
	}

	l, rej = one(t, "905331234562; sms; ONAY; 15.05.2025 14:23:00", smsOpts())
	if rej != nil || l.Recipient != "+905331234562" || l.ExternalID != "" || l.Source != consent.SourceMesaj {
		t.Fatalf("line %+v, rejection %v", l, rej)
	}
}

// TestPlatformTable checks every value of the format's table, in several cases.
func TestPlatformTable(t *testing.T) {
	table := map[consent.Source][]string{
		consent.SourceEposta:        {"email", "e-mail", "eposta"},
		consent.SourceMesaj:         {"sms", "mesaj"},
		consent.SourceMobil:         {"mobileapp", "mobile", "app", "mobil"},
		consent.SourceWeb:           {"web", "website", "mobile/web", "online"},
		consent.SourceFizikselOrtam: {"form", "store", "branch", "fiziksel"},
		consent.SourceCagriMerkezi:  {"callcenter", "call", "cagrimerkezi"},
		consent.SourceSosyalMedya:   {"social", "socialmedia"},
		consent.SourceIslakImza:     {"wetsignature", "islakimza"},
		consent.SourceEtkinlik:      {"event", "etkinlik"},
		consent.SourceATM:           {"atm"},
	}
	for _, src := range consent.BrandSources {
		table[src] = append(table[src], string(src))
	}
	opts := emailOpts()
	opts.DefaultSource = consent.SourceMobil // so that a wrongly unknown value cannot pass as HS_WEB
	for want, values := range table {
		for _, v := range values {
			for _, p := range []string{v, strings.ToUpper(v), strings.ToUpper(v[:1]) + v[1:], strings.ToLower(v)} {
				// A line each source takes: HS_2015 has one date, HS_KARAR is a RET.
				line := "user@example.com;" + p + "; ONAY; 15.05.2025 14:23:00"
				switch want {
				case consent.Source2015:
					line = "user@example.com;" + p + "; ONAY; 01.05.2015 00:00:00"
				case consent.SourceKarar:
					line = "user@example.com;" + p + "; RET; 15.05.2025 14:23:00"
				}
				l, rej := one(t, line+"\n", opts)
				if rej != nil {
					t.Errorf("platform %q rejected: %v", p, rej)
					continue
				}
				if l.Source != want || l.UnknownPlatform {
					t.Errorf("platform %q → %s (unknown %v), want %s", p, l.Source, l.UnknownPlatform, want)
				}
			}
		}
	}
}

func TestUnknownPlatformUsesDefault(t *testing.T) {
	for _, tt := range []struct {
		def, want consent.Source
	}{{"", consent.SourceWeb}, {consent.SourceMobil, consent.SourceMobil}} {
		opts := emailOpts()
		opts.DefaultSource = tt.def
		res := scanAll(t, withPlatform("kiosk")+"\n"+withPlatform("web")+"\n"+withPlatform("kiosk 2")+"\n", opts)
		if res.counts.Valid != 3 || res.counts.UnknownPlatform != 2 {
			t.Fatalf("default %q: counts %+v, want 3 valid, 2 unknown", tt.def, res.counts)
		}
		if l := res.lines[0]; l.Source != tt.want || !l.UnknownPlatform {
			t.Errorf("default %q: kiosk → %s (unknown %v), want %s, unknown", tt.def, l.Source, l.UnknownPlatform, tt.want)
		}
		if res.lines[1].UnknownPlatform {
			t.Errorf("web counted unknown")
		}
	}
}

// The cache in front of consent.PlatformSource must answer as it does,
// including for values too long to be kept.
func TestPlatformCacheAgrees(t *testing.T) {
	c := newPlatformCache(consent.SourceMobil)
	values := []string{"web", "WEB", "", "IYS_X", "kiosk", strings.Repeat("x", platformCacheKeyMax+1), "hs_karar"}
	for i := 0; i < platformCacheMax+10; i++ {
		values = append(values, fmt.Sprintf("p%d", i))
	}
	for round := 0; round < 2; round++ {
		for _, v := range values {
			s1, k1, e1 := c.source(v)
			s2, k2, e2 := consent.PlatformSource(v, consent.SourceMobil)
			if s1 != s2 || k1 != k2 || e1 != e2 {
				t.Fatalf("round %d, %q: cache (%s, %v, %v), PlatformSource (%s, %v, %v)", round, v, s1, k1, e1, s2, k2, e2)
			}
		}
	}
	if len(c.m) > platformCacheMax {
		t.Fatalf("cache holds %d values, over %d", len(c.m), platformCacheMax)
	}
}

func TestTooOldIsCountedForValidLinesOnly(t *testing.T) {
	// testNow is Tue 20 May 2025 noon. 14 May (Wed): deadline Mon 19 is a
	// holiday, so Thu 15, Fri 16, Tue 20 → end of the 20th: not too old.
	// 13 May (Tue): Wed 14, Thu 15, Fri 16 → too old since the 17th.
	content := strings.Join([]string{
		withTime("14.05.2025 00:00:00"),
		withTime("13.05.2025 23:59:59"),
		withTime("01.05.2015 00:00:00"),
		"user@example.com; kiosk; onay; 13.05.2025 10:00:00", // rejected: not counted as old or unknown
		withTime(at(testNow)),
	}, "\n")
	res := scanAll(t, content, emailOpts())
	if res.counts.OlderThan3BusinessDays != 2 || res.counts.UnknownPlatform != 0 || res.counts.Valid != 4 {
		t.Fatalf("counts %+v, want 4 valid, 2 older than 3 business days, 0 unknown", res.counts)
	}
	for i, want := range []bool{false, true, true, false} {
		if res.lines[i].TooOld != want {
			t.Errorf("line %d TooOld = %v, want %v", res.lines[i].Number, res.lines[i].TooOld, want)
		}
	}
}

// The per-file cutoff must agree with consent.TooOld for every pair of
// moments, across weekends, holidays and the DST years before 2016.
func TestTooOldCutoffAgreesWithConsent(t *testing.T) {
	start := time.Date(2015, time.March, 1, 0, 0, 0, 0, consent.Istanbul)
	end := time.Date(2031, time.January, 10, 0, 0, 0, 0, consent.Istanbul)
	checked := 0
	for now := start; now.Before(end); now = now.Add(17*time.Hour + 13*time.Minute) {
		n := consent.NewDate(now)
		cutoff := tooOldCutoff(n)
		for back := -2 * time.Hour; back < 20*24*time.Hour; back += 3*time.Hour + 7*time.Minute {
			d := consent.NewDate(now.Add(-back))
			if got, want := dayNumber(d.Time()) < cutoff, consent.TooOld(d, n); got != want {
				t.Fatalf("now %s, consent %s: cutoff says too old = %v, consent.TooOld = %v", n, d, got, want)
			}
			checked++
		}
		// The edges: the last second of the day before the cutoff, the first of the cutoff day.
		y, m, dd := cutoff/10000, time.Month(cutoff/100%100), cutoff%100
		first := consent.NewDate(time.Date(y, m, dd, 0, 0, 0, 0, consent.Istanbul))
		if consent.TooOld(first, n) || !consent.TooOld(first.Add(-time.Second), n) {
			t.Fatalf("now %s: cutoff %d is not the first day that is not too old", n, cutoff)
		}
	}
	if checked < 100000 {
		t.Fatalf("only %d pairs checked", checked)
	}
}

// HS_2015 consents carry no 3-business-day warning: İYS takes them at any
// time. A 10-digit number starting with 5 is kept and counted.
func TestWarningsOfHS2015AndMissingCountryCode(t *testing.T) {
	content := strings.Join([]string{
		"905331234562; HS_2015; ONAY; 01.05.2015 00:00:00",
		"905331234563; web; ONAY; 01.05.2015 00:00:00", // too old
		"5331234562; sms; ONAY; 15.05.2025 14:23:00",   // a Türkiye mobile without 90?
		"5331234563; sms; ONAY; 15.05.2025 14:23:00; x",
		"4915112345678; sms; ONAY; 15.05.2025 14:23:00", // Germany: 13 digits, no warning
		"6331234562; sms; ONAY; 15.05.2025 14:23:00",    // 10 digits, not a 5: no warning
		"533123456; sms; ONAY; 15.05.2025 14:23:00",     // rejected: not counted
	}, "\n")
	res := scanAll(t, content, smsOpts())
	if c := res.counts; c.Valid != 6 || c.Rejected != 1 || c.OlderThan3BusinessDays != 1 || c.MaybeMissingCountryCode != 2 {
		t.Fatalf("counts %+v, want 6 valid, 1 rejected, 1 older than 3 business days, 2 maybe missing the country code", c)
	}
	for i, want := range []bool{false, false, true, true, false, false} {
		if got := res.lines[i].MaybeMissingCountryCode; got != want {
			t.Errorf("line %d: MaybeMissingCountryCode = %v, want %v", res.lines[i].Number, got, want)
		}
	}
	if res.lines[0].TooOld || !res.lines[1].TooOld {
		t.Errorf("TooOld: HS_2015 %v, web %v; want false, true", res.lines[0].TooOld, res.lines[1].TooOld)
	}
	if r := res.lines[2].Recipient; r != "+5331234562" {
		t.Errorf("kept as %q, want +5331234562: the number is not guessed at", r)
	}
	// Email files have no phones to flag.
	if c := scanAll(t, okEmail, emailOpts()).counts; c.MaybeMissingCountryCode != 0 {
		t.Errorf("email counts %+v", c)
	}
}
