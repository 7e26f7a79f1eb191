package consent

import (
	"strings"
	"testing"
	"time"
)

func at(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestEvaluate(t *testing.T) {
	now := at("2025-05-15 12:00:00") // a Thursday
	sms := func(st Status, date string, src Source) Consent {
		return Consent{Recipient: "+905331234562", RecipientType: Bireysel, Type: TypeMesaj, Status: st, ConsentDate: at(date), Source: src}
	}
	onayHeld := &Held{Status: StatusOnay, ConsentDate: at("2025-05-14 10:00:00")}
	retHeld := &Held{Status: StatusRet, ConsentDate: at("2025-05-14 10:00:00")}
	tests := []struct {
		name string
		held *Held
		c    Consent
		want Code
	}{
		{"first ONAY is recorded", nil, sms(StatusOnay, "2025-05-15 09:00:00", SourceWeb), ""},
		{"first RET is not listed", nil, sms(StatusRet, "2025-05-15 09:00:00", SourceWeb), CodeFirstIsRet},
		{"RET after ONAY", onayHeld, sms(StatusRet, "2025-05-15 09:00:00", SourceWeb), ""},
		{"ONAY after ONAY", onayHeld, sms(StatusOnay, "2025-05-15 09:00:00", SourceWeb), CodeSameStatus},
		{"RET after RET", retHeld, sms(StatusRet, "2025-05-15 09:00:00", SourceWeb), CodeSameStatus},
		{"older than held", onayHeld, sms(StatusRet, "2025-05-13 09:00:00", SourceWeb), CodeNewerHeld},
		{"same date as held", onayHeld, sms(StatusRet, "2025-05-14 10:00:00", SourceWeb), CodeNewerHeld},
		{"more than 3 business days", nil, sms(StatusOnay, "2025-05-09 09:00:00", SourceWeb), CodeTooOld},
		{"exactly 3 business days (Monday given, Thursday recorded)", nil, sms(StatusOnay, "2025-05-12 00:00:00", SourceWeb), ""},
		{"before 2015-05-01", nil, sms(StatusOnay, "2015-04-30 23:59:59", SourceWeb), CodeBefore2015},
		{"in the future", nil, sms(StatusOnay, "2025-05-15 12:00:01", SourceWeb), CodeFutureDate},
		{"HS_2015 on its only date", nil, sms(StatusOnay, "2015-05-01 00:00:00", Source2015), ""},
		{"HS_2015 on another date", nil, sms(StatusOnay, "2016-05-01 00:00:00", Source2015), CodeBadHS2015Date},
		{"HS_KARAR must be RET", onayHeld, sms(StatusOnay, "2025-05-15 09:00:00", SourceKarar), CodeUnknownSource},
		{"HS_KARAR RET", onayHeld, sms(StatusRet, "2025-05-15 09:00:00", SourceKarar), ""},
		{"a citizen source is not a brand's", nil, sms(StatusOnay, "2025-05-15 09:00:00", SourceIYSWeb), CodeUnknownSource},
		{"bad phone", nil, Consent{Recipient: "05331234562", RecipientType: Bireysel, Type: TypeMesaj, Status: StatusOnay, ConsentDate: at("2025-05-15 09:00:00"), Source: SourceWeb}, CodeBadPhone},
		{"bad email", nil, Consent{Recipient: "a@b", RecipientType: Bireysel, Type: TypeEposta, Status: StatusOnay, ConsentDate: at("2025-05-15 09:00:00"), Source: SourceWeb}, CodeBadEmail},
		{"unknown type", nil, Consent{Recipient: "+905331234562", RecipientType: Bireysel, Type: "FAX", Status: StatusOnay, ConsentDate: at("2025-05-15 09:00:00"), Source: SourceWeb}, CodeUnknownType},
		{"RED is not RET", nil, sms("RED", "2025-05-15 09:00:00", SourceWeb), CodeUnknownStatus},
		{"unknown recipient type", nil, Consent{Recipient: "+905331234562", RecipientType: "KURUM", Type: TypeMesaj, Status: StatusOnay, ConsentDate: at("2025-05-15 09:00:00"), Source: SourceWeb}, CodeUnknownRecipientType},
	}
	for _, tt := range tests {
		if got := Evaluate(tt.held, tt.c, now); got != tt.want {
			t.Errorf("%s: Evaluate = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPreCheckIgnoresHeldState(t *testing.T) {
	now := at("2025-05-15 12:00:00")
	ret := Consent{Recipient: "+905331234562", RecipientType: Bireysel, Type: TypeMesaj, Status: StatusRet, ConsentDate: at("2025-05-15 09:00:00"), Source: SourceWeb}
	if code := PreCheck(ret, now); code != "" {
		t.Fatalf("PreCheck of a fresh RET = %q: whether İYS holds a record is İYS's to say", code)
	}
	ret.ConsentDate = now.Add(time.Hour)
	if code := PreCheck(ret, now); code != CodeFutureDate {
		t.Fatalf("PreCheck of a future date = %q, want %q", code, CodeFutureDate)
	}
}

func TestClassify(t *testing.T) {
	tests := map[Code]Class{
		"H174": ClassAlreadyInIYS, "H175": ClassNoPriorRecord, "H178": ClassSuperseded, "H467": ClassTooOld,
		"H155": ClassInvalid, "H114": ClassInvalid, "H083": ClassTransient, "H124": ClassTransient,
		"H123": ClassTransient, "H192": ClassTransient, "H084": ClassLoginLimit, "H351": ClassToken,
		"H353": ClassConfiguration, "H245": ClassConfiguration, "H194": ClassOurBug, "H125": ClassOurBug,
		"H999": ClassUnknown, "": ClassUnknown,
	}
	for code, want := range tests {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%q) = %q, want %q", code, got, want)
		}
	}
	for _, c := range []Class{ClassTransient, ClassToken, ClassConfiguration, ClassOurBug, ClassLoginLimit} {
		if _, ok := OutcomeOf(c); ok {
			t.Errorf("OutcomeOf(%q) is a verdict; it must not be", c)
		}
	}
	if o, ok := OutcomeOf(ClassAlreadyInIYS); !ok || !o.Synced() {
		t.Errorf("already_in_iys = (%q, %v), want a synced outcome", o, ok)
	}
	if o, _ := OutcomeOf(ClassNoPriorRecord); o.Synced() {
		t.Errorf("no_prior_record must leave the record rejected")
	}
}

func TestPlatformSource(t *testing.T) {
	tests := []struct {
		in    string
		want  Source
		known bool
		err   error
	}{
		{"EMAIL", SourceEposta, true, nil},
		{"mobileapp", SourceMobil, true, nil},
		{"Mobile/Web", SourceWeb, true, nil},
		{"SMS", SourceMesaj, true, nil},
		{"form", SourceFizikselOrtam, true, nil},
		{"hs_web", SourceWeb, true, nil},
		{"HS_2015", Source2015, true, nil},
		{"kiosk", SourceEtkinlik, false, nil},
		{"", "", false, ErrEmptyPlatform},
		{"iys_web", "", false, ErrCitizenPlatform},
		{"IYS_anything", "", false, ErrCitizenPlatform},
	}
	for _, tt := range tests {
		got, known, err := PlatformSource(tt.in, SourceEtkinlik)
		if got != tt.want || known != tt.known || err != tt.err {
			t.Errorf("PlatformSource(%q) = (%q, %v, %v), want (%q, %v, %v)", tt.in, got, known, err, tt.want, tt.known, tt.err)
		}
	}
}

// TestCheckSource: the two rules tied to a source, which the upload files
// and the intake apply as they read a consent, hold whatever the date's range.
func TestCheckSource(t *testing.T) {
	tests := []struct {
		name string
		d    string
		src  Source
		st   Status
		want Code
	}{
		{"HS_2015 on its date", "2015-05-01 00:00:00", Source2015, StatusOnay, ""},
		{"HS_2015 a second later", "2015-05-01 00:00:01", Source2015, StatusOnay, CodeBadHS2015Date},
		{"HS_2015 before the floor", "2014-01-01 10:00:00", Source2015, StatusRet, CodeBadHS2015Date},
		{"HS_2015 recent", "2025-05-15 09:00:00", Source2015, StatusOnay, CodeBadHS2015Date},
		{"HS_KARAR RET", "2025-05-15 09:00:00", SourceKarar, StatusRet, ""},
		{"HS_KARAR ONAY", "2025-05-15 09:00:00", SourceKarar, StatusOnay, CodeUnknownSource},
		{"HS_WEB on the floor", "2015-05-01 00:00:00", SourceWeb, StatusOnay, ""},
	}
	for _, tt := range tests {
		if got := CheckSource(at(tt.d), tt.src, tt.st); got != tt.want {
			t.Errorf("%s: CheckSource = %q, want %q", tt.name, got, tt.want)
		}
		// CheckDate applies it before the date's range.
		if got := CheckDate(at(tt.d), tt.src, tt.st, at("2025-05-15 12:00:00")); tt.want != "" && got != tt.want {
			t.Errorf("%s: CheckDate = %q, want %q", tt.name, got, tt.want)
		}
	}
	if !TooOldExempt(Source2015) || TooOldExempt(SourceWeb) || TooOldExempt(SourceKarar) {
		t.Error("only HS_2015 is exempt from the 3-business-day rule")
	}
}

func TestCheckCode(t *testing.T) {
	for _, ok := range []string{"600001", "700001", "B1", "I1", "nope", "12345678901234567890"} {
		if err := CheckCode(ok); err != nil {
			t.Errorf("CheckCode(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "a/b", "60 0001", " 600001", "600001\n", "\x1b[31m600001", "6%2F0", "600-001",
		"ş600001", "123456789012345678901", "600001?x=1", "600001#"} {
		if err := CheckCode(bad); err == nil || !strings.Contains(err.Error(), "1 to 20 ASCII letters or digits") {
			t.Errorf("CheckCode(%q) = %v, want the shape of a code", bad, err)
		}
	}
}
