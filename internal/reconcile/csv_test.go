package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// A day can be reconciled once it is over in Türkiye, not a moment before.
func TestDayOver(t *testing.T) {
	d := mustDay("2025-03-30")
	for now, want := range map[time.Time]bool{
		d.End.Add(-time.Nanosecond): false,
		d.End:                       true,
		d.Start:                     false,
		// 21:30 UTC on the 30th is already the 31st in Türkiye.
		time.Date(2025, 3, 30, 21, 30, 0, 0, time.UTC): true,
	} {
		if d.Over(now) != want {
			t.Errorf("Over(%v) = %v, want %v", now, !want, want)
		}
	}
}

// The findings' CSV: one row a finding, the side that holds no record
// left empty, the file's line only when it lists the key.
func TestWriteCSV(t *testing.T) {
	date := consent.NewDate(time.Date(2025, 6, 10, 9, 0, 0, 0, consent.Istanbul))
	key := consent.Key{Recipient: "+905330000001", RecipientType: consent.Bireysel, Type: consent.TypeMesaj}
	var b strings.Builder
	err := WriteCSV(&b, []Finding{
		{Kind: MissingHere, Key: key, Line: 3, IYS: &Held{Status: consent.StatusRet, ConsentDate: date, Source: "IYS_WEB",
			CreationDate: date, TransactionID: "tx1"}},
		{Kind: OursNewerUnsent, Key: key, LookedUp: true, Ours: &Ours{Status: consent.StatusOnay, ConsentDate: date,
			Source: consent.SourceWeb, State: consent.StatePending}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(CSVHeader, ",") + "\n" +
		"missing_here,true,+905330000001,BIREYSEL,MESAJ,,,,,,RET,2025-06-10 09:00:00,IYS_WEB,2025-06-10 09:00:00,tx1,3,false\n" +
		"ours_newer_unsent,false,+905330000001,BIREYSEL,MESAJ,ONAY,2025-06-10 09:00:00,HS_WEB,pending,,,,,,,,true\n"
	if b.String() != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", b.String(), want)
	}
}
