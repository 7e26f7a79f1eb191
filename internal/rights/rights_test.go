package rights

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
	"github.com/iys-sync/iys-sync/internal/iysclient"
	"github.com/iys-sync/iys-sync/internal/iysclient/iysclienttest"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	"github.com/iys-sync/iys-sync/internal/sandbox/sandboxtest"
)

var all = []consent.Type{consent.TypeMesaj, consent.TypeArama, consent.TypeEposta}

// check runs the real client over HTTP against a sandbox with opts.
func check(t *testing.T, opts sandbox.Options, r Request) error {
	t.Helper()
	opts.Brands = append(opts.Brands, sandbox.Brand{IYSCode: "700001", BrandCode: "600001", Name: "Demo"})
	s := sandboxtest.Start(t, opts)
	c := iysclienttest.New(t, s.URL, iysclient.Credentials{Username: sandbox.DefaultUsername, Password: sandbox.DefaultPassword})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Check(ctx, c, r)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	partner := Request{IntegratorCode: "900001", IYSCode: "700001", BrandCode: "600001", Channels: all}
	own := Request{IYSCode: "700001", BrandCode: "600001", Channels: all}
	noRight := func(typ consent.Type, r sandbox.Right) []sandbox.RightRule {
		return []sandbox.RightRule{{BrandCode: "600001", Type: typ, Right: r, Granted: false}}
	}
	tests := []struct {
		name    string
		opts    sandbox.Options
		req     Request
		want    []string // in the panel instructions; nil = allowed
		wantNot []string
	}{
		{"partner with every right", sandbox.Options{}, partner, nil, nil},
		{"own user", sandbox.Options{}, own, nil, nil},
		{"partner denied the brand", sandbox.Options{DenyBrands: []string{"600001"}}, partner,
			[]string{"İş Ortaklığı", "900001", "MESAJ, ARAMA, EPOSTA", "Mutabakat Yönetimi"}, nil},
		{"partner without ARAMA write", sandbox.Options{Rights: noRight(consent.TypeArama, sandbox.RightWrite)}, partner,
			[]string{"ARAMA permission", "900001"}, []string{"MESAJ", "Mutabakat"}},
		{"partner without reconciliation", sandbox.Options{Rights: noRight("", sandbox.RightAgreementControl)}, partner,
			[]string{"Mutabakat Yönetimi"}, []string{"İş Ortaklığı"}},
		{"ARAMA write missing but not asked for", sandbox.Options{Rights: noRight(consent.TypeArama, sandbox.RightWrite)},
			Request{IntegratorCode: "900001", IYSCode: "700001", BrandCode: "600001", Channels: []consent.Type{consent.TypeEposta}}, nil, nil},
		// İYS lists no such brand: the codes may be wrong, or the partnership not granted yet.
		{"partner, unknown brand", sandbox.Options{}, Request{IntegratorCode: "900001", IYSCode: "700001", BrandCode: "600999", Channels: all},
			[]string{"İYS lists no brand 600999 under İYS code 700001 for solution partner 900001", "codes are wrong", "--brand-code 600999",
				"--iys-code 700001", "IYS_INTEGRATOR_CODE 900001", "has not granted İş Ortaklığı", "chooses 900001", "MESAJ, ARAMA, EPOSTA",
				"Mutabakat Yönetimi"}, nil},
		{"partner, unknown İYS code", sandbox.Options{}, Request{IntegratorCode: "900001", IYSCode: "700999", BrandCode: "600001", Channels: all},
			[]string{"İYS lists no brand 600001 under İYS code 700999", "codes are wrong", "has not granted İş Ortaklığı"}, nil},
		{"partner, another integrator's user", sandbox.Options{IntegratorCode: "900002"}, partner,
			[]string{"IYS_INTEGRATOR_CODE 900001", "has not granted İş Ortaklığı"}, nil},
		{"own user, unknown brand", sandbox.Options{}, Request{IYSCode: "700001", BrandCode: "600999", Channels: all},
			[]string{"İYS lists no brand 600999", "codes are wrong", "IYS_INTEGRATOR_CODE is not set",
				"İYS panel → İş Ortaklığı → choose the partner → turn on MESAJ, ARAMA, EPOSTA", "Mutabakat Yönetimi"}, nil},
		{"own user without reconciliation", sandbox.Options{Rights: noRight("", sandbox.RightAgreementControl)}, own,
			[]string{"Mutabakat Yönetimi"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, tt.opts, tt.req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var m *Missing
			if !errors.As(err, &m) {
				t.Fatalf("err = %v, want panel instructions", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("instructions lack %q:\n%v", w, err)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(strings.Join(m.Steps, "\n"), w) {
					t.Errorf("instructions ask for %q, which is granted:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseRightsShapes(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"brands":[{"brandCode":"600001","rights":[{"type":"MESAJ","write":true,"agreementControl":true}]}]}`,
		`[{"brandCode":600001,"rights":{"MESAJ":{"write":true,"agreementControl":true}}}]`,
		`{"list":[{"brandCode":"600001","rights":[{"type":"MESAJ","write":true,"agreementControl":true}]}]}`,
	} {
		got, err := parseRights([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if r := got["600001"][consent.TypeMesaj]; !r.write || !r.agreementControl {
			t.Errorf("%s: MESAJ rights %+v", raw, r)
		}
	}
	if _, err := parseRights([]byte(`{"brands":[{"brandCode":"1","rights":"all"}]}`)); err == nil {
		t.Error("an unreadable answer was taken for rights")
	}
}

// Codes that are not codes never reach İYS's URL paths.
func TestCheckRefusesBadCodes(t *testing.T) {
	t.Parallel()
	for _, r := range []Request{
		{IYSCode: "700001", BrandCode: "../600001", Channels: all},
		{IYSCode: "700001\n", BrandCode: "600001", Channels: all},
		{IntegratorCode: "9/0", IYSCode: "700001", BrandCode: "600001", Channels: all},
	} {
		err := Check(context.Background(), nil, r) // a nil IYS: any call would panic
		var m *Missing
		if err == nil || errors.As(err, &m) || !strings.Contains(err.Error(), "1 to 20 ASCII letters or digits") {
			t.Errorf("%+v: %v, want the code refused", r, err)
		}
	}
}
