package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

func TestParseSummaryShapes(t *testing.T) {
	t.Parallel()
	const b = consent.Bireysel
	cases := []struct {
		name, raw string
		want      []SummaryRow
	}{
		{"the sandbox's", `{"reportDate":"2025-06-10","recipientType":"BIREYSEL","list":[
			{"type":"MESAJ","source":"HS_WEB","onay":3,"ret":1,"total":4},{"type":"MESAJ","source":"IYS_MOBIL","onay":0,"ret":2,"total":2}]}`,
			[]SummaryRow{{b, "MESAJ", "HS_WEB", 3, 1, 4, true}, {b, "MESAJ", "IYS_MOBIL", 0, 2, 2, true}}},
		{"empty", `{"list":[]}`, []SummaryRow{}},
		{"a top-level array, other cases, strings", `[{"Type":"mesaj","Source":"hs_web","ONAY":"3","Ret":" 1 "}]`,
			[]SummaryRow{{b, "MESAJ", "HS_WEB", 3, 1, 4, true}}},
		{"Turkish names", `{"List":[{"izinTipi":"ARAMA","kaynak":"HS_WEB","toplam":5}]}`,
			[]SummaryRow{{b, "ARAMA", "HS_WEB", 0, 0, 5, false}}},
	}
	for _, c := range cases {
		got, err := ParseSummary(b, []byte(c.raw))
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v %+v, want %+v", c.name, err, got, c.want)
		}
	}
	for _, bad := range []string{``, `null`, `{"rows":[]}`, `{"list":{}}`, `[{"source":"HS_WEB","onay":1}]`,
		`[{"type":"MESAJ","source":"HS_WEB"}]`, `[{"type":"MESAJ","onay":"many"}]`, `"text"`} {
		if rows, err := ParseSummary(b, []byte(bad)); err == nil {
			t.Errorf("%s: read as %+v", bad, rows)
		}
	}
}

func TestCompareSummary(t *testing.T) {
	t.Parallel()
	const (
		b, tc     = consent.Bireysel, consent.Tacir
		m, e      = consent.TypeMesaj, consent.TypeEposta
		onay, ret = consent.StatusOnay, consent.StatusRet
	)
	summaries := map[consent.RecipientType][]SummaryRow{
		b: {
			{b, m, "HS_WEB", 3, 1, 4, true},
			{b, m, "IYS_MOBIL", 0, 2, 2, true},
			{b, e, "HS_EPOSTA", 0, 0, 5, false}, // a total only
			{b, m, "HS_MESAJ", 1, 0, 1, true},   // the file lacks it
		},
		// TACIR's summary could not be read: not compared.
	}
	file := map[CountKey]int{
		{b, m, "HS_WEB", onay}:    3,
		{b, m, "HS_WEB", ret}:     1,
		{b, m, "IYS_MOBIL", ret}:  1, // one short
		{b, e, "HS_EPOSTA", onay}: 2,
		{b, e, "HS_EPOSTA", ret}:  3,
		{b, m, "IYS_WEB", onay}:   1, // the summary lacks it
		{tc, m, "HS_WEB", onay}:   7,
	}
	ours := map[CountKey]int{
		{b, m, "HS_WEB", onay}:    2, // fewer than İYS's: fine
		{b, m, "HS_WEB", ret}:     2, // more: a mismatch
		{b, e, "HS_EPOSTA", onay}: 6, // more than the total
		{tc, m, "HS_WEB", ret}:    9,
	}
	var got []string
	for _, x := range CompareSummary(summaries, file, ours) {
		got = append(got, fmt.Sprintf("%s/%s/%s/%s %s %d~%d", x.RecipientType, x.Type, x.Source, x.Status, x.Against, x.Summary, x.Counted))
	}
	want := []string{
		"BIREYSEL/EPOSTA/HS_EPOSTA/ ours 5~6",
		"BIREYSEL/MESAJ/HS_MESAJ/ONAY file 1~0",
		"BIREYSEL/MESAJ/HS_WEB/RET ours 1~2",
		"BIREYSEL/MESAJ/IYS_MOBIL/RET file 2~1",
		"BIREYSEL/MESAJ/IYS_WEB/ONAY file 0~1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("mismatches\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := CompareSummary(summaries, map[CountKey]int{
		{b, m, "HS_WEB", onay}: 3, {b, m, "HS_WEB", ret}: 1, {b, m, "IYS_MOBIL", ret}: 2,
		{b, e, "HS_EPOSTA", ret}: 5, {b, m, "HS_MESAJ", onay}: 1,
	}, nil); len(got) != 0 {
		t.Errorf("a file that agrees: %+v", got)
	}
}
