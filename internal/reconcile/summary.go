package reconcile

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// SummaryRow is one line of İYS's daily summary: a day's changes of one
// recipient type, type and source.
type SummaryRow struct {
	RecipientType consent.RecipientType
	Type          consent.Type
	Source        consent.Source
	Onay, Ret     int
	Total         int
	Split         bool // Onay and Ret were given; else only Total is known
}

// The summary's shape is not documented [doc: "counts per type and
// source"]. Read leniently [guess]: an object whose "list" (any case) is
// the rows, or the rows as a top-level array; a row's names in any case,
// English or Turkish; numbers as numbers or strings.
var summaryNames = map[string]string{
	"type": "type", "tip": "type", "izintipi": "type", "izinturu": "type",
	"source": "source", "kaynak": "source", "izinkaynagi": "source",
	"onay": "onay", "approved": "onay",
	"ret": "ret", "rejected": "ret",
	"total": "total", "toplam": "total", "count": "total",
}

// ParseSummary reads İYS's daily summary of one recipient type.
func ParseSummary(rt consent.RecipientType, raw []byte) ([]SummaryRow, error) {
	raw = bytes.TrimSpace(raw)
	var list []map[string]json.RawMessage
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
	} else {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
		found := false
		for name, v := range obj {
			if strings.EqualFold(name, "list") {
				if err := json.Unmarshal(v, &list); err != nil {
					return nil, fmt.Errorf("summary: list: %w", err)
				}
				found = true
			}
		}
		if !found {
			return nil, errors.New("summary: no list of counts")
		}
	}
	rows := make([]SummaryRow, 0, len(list))
	for i, m := range list {
		row := SummaryRow{RecipientType: rt}
		seen := map[string]bool{}
		for name, v := range m {
			field := summaryNames[strings.ToLower(name)]
			if field == "" {
				continue
			}
			seen[field] = true
			var err error
			switch field {
			case "type":
				var s string
				err = json.Unmarshal(v, &s)
				row.Type = consent.Type(strings.ToUpper(strings.TrimSpace(s)))
			case "source":
				var s string
				err = json.Unmarshal(v, &s)
				row.Source = consent.Source(strings.ToUpper(strings.TrimSpace(s)))
			case "onay":
				row.Onay, err = number(v)
			case "ret":
				row.Ret, err = number(v)
			case "total":
				row.Total, err = number(v)
			}
			if err != nil {
				return nil, fmt.Errorf("summary: row %d: %s: %w", i+1, name, err)
			}
		}
		if row.Type == "" {
			return nil, fmt.Errorf("summary: row %d has no type", i+1)
		}
		if !seen["onay"] && !seen["ret"] && !seen["total"] {
			return nil, fmt.Errorf("summary: row %d has no counts", i+1)
		}
		row.Split = seen["onay"] || seen["ret"]
		if row.Split && !seen["total"] {
			row.Total = row.Onay + row.Ret
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func number(v json.RawMessage) (int, error) {
	var n int
	if json.Unmarshal(v, &n) == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return 0, errors.New("not a number")
	}
	return strconv.Atoi(strings.TrimSpace(s))
}

// Against names what a summary count was compared with.
type Against string

// Comparisons of the summary.
const (
	AgainstFile Against = "file" // the day file's rows: İYS's two reports must agree
	AgainstOurs Against = "ours" // our records İYS accepted that day: the summary must count at least these
)

// Mismatch is a summary count that disagrees.
type Mismatch struct {
	RecipientType consent.RecipientType `json:"recipientType"`
	Type          consent.Type          `json:"type"`
	Source        consent.Source        `json:"source"`
	Status        consent.Status        `json:"status"` // "" when the summary gives only a total
	Against       Against               `json:"against"`
	Summary       int                   `json:"summary"` // İYS's summary
	Counted       int                   `json:"counted"` // the file's rows, or our records
}

type groupKey struct {
	rt  consent.RecipientType
	typ consent.Type
	src consent.Source
}

// CompareSummary compares İYS's summaries (of the recipient types given)
// with the day file's counts, exactly, and with our records İYS accepted
// that day, which the summary must count at least: İYS also counts a key's
// earlier changes of the day, other systems' changes for the brand and
// records we changed since. Rows of other recipient types are ignored.
func CompareSummary(summaries map[consent.RecipientType][]SummaryRow, file, ours map[CountKey]int) []Mismatch {
	var out []Mismatch
	sum := map[groupKey]SummaryRow{}
	groups := map[groupKey]bool{}
	for rt, rows := range summaries {
		for _, r := range rows {
			g := groupKey{rt, r.Type, r.Source}
			if prev, ok := sum[g]; ok { // a repeated line adds up
				r.Onay, r.Ret, r.Total, r.Split = r.Onay+prev.Onay, r.Ret+prev.Ret, r.Total+prev.Total, r.Split && prev.Split
			}
			sum[g] = r
			groups[g] = true
		}
	}
	split := func(counts map[CountKey]int) map[groupKey][2]int {
		m := map[groupKey][2]int{}
		for k, n := range counts {
			if _, read := summaries[k.RecipientType]; !read {
				continue
			}
			g := groupKey{k.RecipientType, k.Type, k.Source}
			v := m[g]
			if k.Status == consent.StatusRet {
				v[1] += n
			} else {
				v[0] += n
			}
			m[g] = v
			groups[g] = true
		}
		return m
	}
	fileBy, oursBy := split(file), split(ours)
	for g := range groups {
		s := sum[g] // a group the summary lacks counts 0
		if _, listed := sum[g]; !listed {
			s.Split = true
		}
		mk := func(st consent.Status, against Against, summary, counted int) Mismatch {
			return Mismatch{RecipientType: g.rt, Type: g.typ, Source: g.src, Status: st, Against: against,
				Summary: summary, Counted: counted}
		}
		f, o := fileBy[g], oursBy[g]
		if s.Split {
			for i, st := range []consent.Status{consent.StatusOnay, consent.StatusRet} {
				have := []int{s.Onay, s.Ret}[i]
				if f[i] != have {
					out = append(out, mk(st, AgainstFile, have, f[i]))
				}
				if o[i] > have {
					out = append(out, mk(st, AgainstOurs, have, o[i]))
				}
			}
			continue
		}
		if f[0]+f[1] != s.Total {
			out = append(out, mk("", AgainstFile, s.Total, f[0]+f[1]))
		}
		if o[0]+o[1] > s.Total {
			out = append(out, mk("", AgainstOurs, s.Total, o[0]+o[1]))
		}
	}
	slices.SortFunc(out, func(a, b Mismatch) int {
		return cmp.Or(cmp.Compare(a.RecipientType, b.RecipientType), cmp.Compare(a.Type, b.Type),
			cmp.Compare(a.Source, b.Source), cmp.Compare(a.Status, b.Status), cmp.Compare(a.Against, b.Against))
	})
	return out
}
