package upload

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestParseChannel(t *testing.T) {
	for in, want := range map[string]Channel{"email": Email, "sms": SMS} {
		if got, err := ParseChannel(in); err != nil || got != want {
			t.Errorf("ParseChannel(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "EMAIL", "Sms", "eposta", "mesaj", "sms "} {
		if _, err := ParseChannel(in); err == nil || !strings.Contains(err.Error(), "want email or sms") {
			t.Errorf("ParseChannel(%q) error = %v", in, err)
		}
	}
}

func TestParseTypes(t *testing.T) {
	got, err := ParseTypes("MESAJ, ARAMA")
	if err != nil || !reflect.DeepEqual(got, []consent.Type{consent.TypeMesaj, consent.TypeArama}) {
		t.Fatalf("ParseTypes = %v, %v", got, err)
	}
	for _, in := range []string{"", "mesaj", "MESAJ,", "SMS"} {
		if _, err := ParseTypes(in); err == nil || !strings.Contains(err.Error(), "--type") {
			t.Errorf("ParseTypes(%q) error = %v", in, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	M, A, E := consent.TypeMesaj, consent.TypeArama, consent.TypeEposta
	tests := []struct {
		name  string
		opts  Options
		words string // "" when valid
	}{
		{"email", Options{Channel: Email}, ""},
		{"email with an empty type list", Options{Channel: Email, Types: []consent.Type{}}, ""},
		{"email with EPOSTA", Options{Channel: Email, Types: []consent.Type{E}}, "--type is refused for email files: their type is always EPOSTA"},
		{"email with MESAJ", Options{Channel: Email, Types: []consent.Type{M}}, "--type is refused for email files"},
		{"sms default", Options{Channel: SMS}, ""},
		{"sms MESAJ", Options{Channel: SMS, Types: []consent.Type{M}}, ""},
		{"sms ARAMA", Options{Channel: SMS, Types: []consent.Type{A}}, ""},
		{"sms MESAJ,ARAMA", Options{Channel: SMS, Types: []consent.Type{M, A}}, ""},
		{"sms ARAMA,MESAJ", Options{Channel: SMS, Types: []consent.Type{A, M}}, ""},
		{"sms EPOSTA", Options{Channel: SMS, Types: []consent.Type{E}}, "refused for SMS files"},
		{"sms MESAJ twice", Options{Channel: SMS, Types: []consent.Type{M, M}}, "twice"},
		{"sms unknown type", Options{Channel: SMS, Types: []consent.Type{"FAX"}}, "refused for SMS files"},
		{"no channel", Options{}, "want email or sms"},
		{"bad channel", Options{Channel: "fax"}, "want email or sms"},
		{"default source", Options{Channel: SMS, DefaultSource: consent.SourceMobil}, ""},
		{"default source not a brand source", Options{Channel: SMS, DefaultSource: "WEB"}, "brand sources"},
		{"default source IYS_WEB", Options{Channel: SMS, DefaultSource: consent.SourceIYSWeb}, "brand sources"},
		{"default source HS_2015", Options{Channel: SMS, DefaultSource: consent.Source2015}, "unknown platforms"},
		{"default source HS_KARAR", Options{Channel: SMS, DefaultSource: consent.SourceKarar}, "unknown platforms"},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		switch {
		case tt.words == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.words != "" && (err == nil || !strings.Contains(err.Error(), tt.words)):
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.words)
		}
	}
}

func TestConsentTypes(t *testing.T) {
	M, A, E := consent.TypeMesaj, consent.TypeArama, consent.TypeEposta
	tests := []struct {
		opts Options
		want []consent.Type
	}{
		{Options{Channel: Email}, []consent.Type{E}},
		{Options{Channel: SMS}, []consent.Type{M}},
		{Options{Channel: SMS, Types: []consent.Type{A}}, []consent.Type{A}},
		{Options{Channel: SMS, Types: []consent.Type{M, A}}, []consent.Type{M, A}},
	}
	for _, tt := range tests {
		if got := tt.opts.ConsentTypes(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%+v: ConsentTypes() = %v, want %v", tt.opts, got, tt.want)
		}
	}
	// The result is the caller's own: changing it leaves the options alone.
	o := Options{Channel: SMS, Types: []consent.Type{M, A}}
	o.ConsentTypes()[0] = E
	if o.Types[0] != M {
		t.Fatal("ConsentTypes shares the options' slice")
	}
}

func TestZeroNowIsNow(t *testing.T) {
	// A consent given a minute ago: valid with the real now, in the future
	// for a Now of a year ago.
	ts := time.Now().In(consent.Istanbul).Add(-time.Minute).Format("02.01.2006 15:04:05")
	line := "user@example.com; web; ONAY; " + ts
	if _, rej := one(t, line, Options{Channel: Email}); rej != nil {
		t.Fatalf("zero Now: %v", rej)
	}
	old := Options{Channel: Email, Now: consent.NewDate(time.Now().AddDate(-1, 0, 0))}
	if _, rej := one(t, line, old); rej == nil || rej.Field != FieldTimestamp {
		t.Fatalf("Now a year ago: %v, want a timestamp in the future", rej)
	}
}

func TestCheckFileName(t *testing.T) {
	for _, ok := range []string{"a.txt", "a.csv", "A.TXT", "b.Csv", "dir.d/x.y.txt", `C:\up\x.CSV`, "my file.txt"} {
		if err := CheckFileName(ok); err != nil {
			t.Errorf("CheckFileName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"a.xlsx", "a.txt.gz", "a.tsv", "txt", "a.tx", "a.txt/", "a", "", "a.c\u017fv", "a.txt "} {
		err := CheckFileName(bad)
		if err == nil {
			t.Errorf("CheckFileName(%q) accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), bad+":") || !strings.Contains(err.Error(), ".txt or .csv") {
			t.Errorf("CheckFileName(%q) = %q, want the path and the rule", bad, err)
		}
	}
}

func TestConsents(t *testing.T) {
	l := Line{Number: 3, Recipient: "+905331234562", Status: consent.StatusRet, ConsentDate: testNow,
		Source: consent.SourceMesaj, ExternalID: "x"}
	got := l.Consents([]consent.Type{consent.TypeMesaj, consent.TypeArama}, consent.Tacir)
	if len(got) != 2 {
		t.Fatalf("%d consents, want 2", len(got))
	}
	for i, typ := range []consent.Type{consent.TypeMesaj, consent.TypeArama} {
		want := consent.Consent{Recipient: "+905331234562", RecipientType: consent.Tacir, Type: typ,
			Status: consent.StatusRet, ConsentDate: testNow, Source: consent.SourceMesaj}
		if got[i] != want {
			t.Errorf("consent %d = %+v, want %+v", i, got[i], want)
		}
		if code := got[i].Validate(testNow); code != "" {
			t.Errorf("consent %d fails İYS's value checks: %s", i, code)
		}
	}
	buf := make([]consent.Consent, 0, 4)
	if got := l.AppendConsents(buf, []consent.Type{consent.TypeArama}, consent.Bireysel); len(got) != 1 || &got[0] != &buf[:1][0] {
		t.Fatal("AppendConsents does not append into dst")
	}
}
