package upload

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/iys-sync/iys-sync/internal/consent"
)

var (
	mesaj      = []consent.Type{consent.TypeMesaj}
	arama      = []consent.Type{consent.TypeArama}
	mesajArama = []consent.Type{consent.TypeMesaj, consent.TypeArama}
)

// tl is a test line: recipient, minute of the day, status, external id.
func tl(recipient string, minute int, status consent.Status, id string) Line {
	return Line{Recipient: recipient, Status: status, ExternalID: id, Source: consent.SourceMesaj,
		ConsentDate: istanbul(2025, time.May, 15, 10, minute, 0)}
}

func withSource(l Line, s consent.Source) Line {
	l.Source = s
	return l
}

// observe feeds files of lines (same types for all) and returns each file's
// superseded count, checking that Observe's results add up to Superseded.
func observe(t *testing.T, tr *Tracker, types []consent.Type, files ...[]Line) []int {
	t.Helper()
	var counts []int
	for _, f := range files {
		tr.StartFile()
		sum := 0
		for _, l := range f {
			beaten, lost := tr.Observe(l, consent.Bireysel, types)
			sum += beaten
			if lost {
				sum++
			}
		}
		if sum != tr.Superseded() {
			t.Fatalf("Observe's results add up to %d, Superseded() = %d", sum, tr.Superseded())
		}
		counts = append(counts, tr.Superseded())
	}
	return counts
}

func TestTracker(t *testing.T) {
	const a, b = "+905331234562", "+905551112233"
	on, ret := consent.StatusOnay, consent.StatusRet
	tests := []struct {
		name  string
		types []consent.Type
		files [][]Line
		want  []int
	}{
		{"different recipients", mesaj, [][]Line{{tl(a, 1, on, ""), tl(b, 1, on, "")}}, []int{0}},
		{"newer line later in the file: the earlier loses", mesaj, [][]Line{{tl(a, 1, on, ""), tl(a, 2, ret, "")}}, []int{1}},
		{"older line later in the file loses", mesaj, [][]Line{{tl(a, 2, on, ""), tl(a, 1, ret, "")}}, []int{1}},
		{"equal timestamps: the later line wins", mesaj, [][]Line{{tl(a, 1, on, ""), tl(a, 1, ret, "")}}, []int{1}},
		{"identical lines in one file: the earlier counts", mesaj, [][]Line{{tl(a, 1, on, "x"), tl(a, 1, on, "x")}}, []int{1}},
		{"three lines, one winner", mesaj, [][]Line{{tl(a, 1, on, ""), tl(a, 3, ret, ""), tl(a, 2, on, "")}}, []int{2}},
		{"each loser counts once, the last line wins", mesaj, [][]Line{{tl(a, 1, on, ""), tl(a, 1, ret, ""), tl(a, 2, on, "")}}, []int{2}},
		{"MESAJ,ARAMA: a line counts once", mesajArama, [][]Line{{tl(a, 1, on, ""), tl(a, 2, ret, ""), tl(a, 0, on, "")}}, []int{2}},

		{"older line in a later file loses", mesaj, [][]Line{{tl(a, 2, on, "")}, {tl(a, 1, ret, "")}}, []int{0, 1}},
		{"newer line in a later file wins, the earlier file keeps its count", mesaj, [][]Line{{tl(a, 1, on, "")}, {tl(a, 2, ret, "")}}, []int{0, 0}},
		{"equal timestamp in a later file wins", mesaj, [][]Line{{tl(a, 1, on, "")}, {tl(a, 1, ret, "")}}, []int{0, 0}},
		{"identical line in a later file changes nothing", mesaj, [][]Line{{tl(a, 1, on, "x")}, {tl(a, 1, on, "x")}}, []int{0, 0}},
		// A tie after the line shows whether it took the record: if it did, it
		// loses to the tie (1); if it changed nothing, the tie beats the earlier
		// file's line, which counts nowhere (0).
		{"identical but for the external id takes the record", mesaj, [][]Line{{tl(a, 1, on, "x")}, {tl(a, 1, on, "y"), tl(a, 1, on, "z")}}, []int{0, 1}},
		{"identical but for the status takes the record", mesaj, [][]Line{{tl(a, 1, on, "x")}, {tl(a, 1, ret, "x"), tl(a, 1, on, "z")}}, []int{0, 1}},
		{"identical but for the source takes the record", mesaj, [][]Line{{tl(a, 1, on, "x")}, {withSource(tl(a, 1, on, "x"), consent.SourceWeb), tl(a, 1, on, "z")}}, []int{0, 1}},
		{"no external id against one", mesaj, [][]Line{{tl(a, 1, on, "")}, {tl(a, 1, on, "x"), tl(a, 1, on, "z")}}, []int{0, 1}},
		{"a later file's line that beat the earlier file then loses in its own file", mesaj,
			[][]Line{{tl(a, 1, on, "")}, {tl(a, 2, ret, ""), tl(a, 3, on, "")}}, []int{0, 1}},
		{"an identical line does not take the record: a tie after it beats the earlier file only", mesaj,
			[][]Line{{tl(a, 1, on, "x")}, {tl(a, 1, on, "x"), tl(a, 1, ret, "")}}, []int{0, 0}},
		{"an identical line followed by an older one: the older loses", mesaj,
			[][]Line{{tl(a, 1, on, "x")}, {tl(a, 1, on, "x"), tl(a, 0, ret, "")}}, []int{0, 1}},
		{"three files", mesaj, [][]Line{{tl(a, 5, on, "")}, {tl(a, 1, ret, ""), tl(b, 1, on, "")}, {tl(b, 1, on, ""), tl(b, 0, ret, ""), tl(a, 5, on, "")}}, []int{0, 1, 1}},
		{"MESAJ,ARAMA across files", mesajArama, [][]Line{{tl(a, 2, on, "")}, {tl(a, 1, ret, ""), tl(a, 2, on, "")}}, []int{0, 1}},
	}
	for _, tt := range tests {
		if tt.types == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			got := observe(t, NewTracker(), tt.types, tt.files...)
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Fatalf("superseded per file %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestTrackerObserveResults(t *testing.T) {
	const a = "+905331234562"
	tr := NewTracker()
	tr.StartFile()
	step := func(l Line, types []consent.Type, wantBeaten int, wantLost bool) {
		t.Helper()
		if b, lost := tr.Observe(l, consent.Bireysel, types); b != wantBeaten || lost != wantLost {
			t.Fatalf("Observe(%+v) = %d, %v; want %d, %v", l, b, lost, wantBeaten, wantLost)
		}
	}
	step(tl(a, 1, consent.StatusOnay, ""), mesajArama, 0, false)
	step(tl(a, 2, consent.StatusRet, ""), mesajArama, 1, false) // one line beaten on two types
	step(tl(a, 0, consent.StatusOnay, ""), mesajArama, 0, true)
	if tr.Records() != 2 || tr.Superseded() != 2 {
		t.Fatalf("records %d, superseded %d; want 2 and 2", tr.Records(), tr.Superseded())
	}
	// The recipient type is part of the key.
	if b, lost := tr.Observe(tl(a, 0, consent.StatusOnay, ""), consent.Tacir, mesaj); b != 0 || lost {
		t.Fatalf("TACIR lost to BIREYSEL's record")
	}
}

// When files register different types, a line can lose on one and win on
// another: it counts once, and losing the other later does not count it again.
func TestTrackerTypesDiffer(t *testing.T) {
	const a = "+905331234562"
	on, ret := consent.StatusOnay, consent.StatusRet
	tr := NewTracker()
	tr.StartFile()
	tr.Observe(tl(a, 5, on, ""), consent.Bireysel, mesaj)
	if b, lost := tr.Observe(tl(a, 3, ret, ""), consent.Bireysel, mesajArama); b != 0 || !lost {
		t.Fatalf("lost on MESAJ, won ARAMA: got %d, %v", b, lost)
	}
	if b, lost := tr.Observe(tl(a, 4, on, ""), consent.Bireysel, arama); b != 0 || lost {
		t.Fatalf("beating a line already counted counted it again: %d, %v", b, lost)
	}
	if tr.Superseded() != 1 {
		t.Fatalf("superseded %d, want 1", tr.Superseded())
	}
	// Naming a type twice is one record.
	if b, lost := tr.Observe(tl("+905551112233", 1, on, ""), consent.Bireysel, []consent.Type{consent.TypeMesaj, consent.TypeMesaj}); b != 0 || lost {
		t.Fatalf("a line beat itself: %d, %v", b, lost)
	}
	// ARAMA alone, separate from MESAJ records of the same recipient.
	tr2 := NewTracker()
	tr2.Observe(tl(a, 1, on, ""), consent.Bireysel, mesaj)
	if _, lost := tr2.Observe(tl(a, 0, on, ""), consent.Bireysel, arama); lost {
		t.Fatal("ARAMA lost to a MESAJ record")
	}
}

// A million records in well under 80 MB: the Tracker holds a hash and 12
// bytes a record, not the recipients.
func TestTrackerMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million records")
	}
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := NewTracker()
	buf := []byte("+90533")
	l := tl("", 1, consent.StatusOnay, "customer-12345")
	for i := 0; i < n; i++ {
		l.Recipient = string(strconv.AppendInt(buf[:6], int64(1000000+i), 10))
		tr.Observe(l, consent.Bireysel, mesaj)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d records: %.1f MB, %.1f bytes a record", tr.Records(), float64(used)/1e6, float64(used)/n)
	if tr.Records() != n {
		t.Fatalf("%d records, want %d", tr.Records(), n)
	}
	if used > 56*n {
		t.Fatalf("%d bytes for %d records: over 56 bytes a record", used, n)
	}
	runtime.KeepAlive(tr)
}
