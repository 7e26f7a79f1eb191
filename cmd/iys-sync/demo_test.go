package main

import (
	"regexp"
	"strings"
	"testing"
)

// The README's first command: the whole job on embedded defaults.
func TestDemo(t *testing.T) {
	t.Parallel()
	r := runCmd(t, nil, "demo")
	if r.code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// 3 email records and 4 SMS lines × MESAJ,ARAMA: 7 accepted, 4 not listed.
	if !regexp.MustCompile(`600001\s+1\s+completed\s+11\s+7\s+4\s+0\s+0\s+0`).MatchString(r.stdout) {
		t.Errorf("run summary not as expected:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`600001\s+active\s+0\s+0\s+7\s+4\s+0`).MatchString(r.stdout) {
		t.Errorf("final status not as expected:\n%s", r.stdout)
	}
	if got := strings.Count(r.stdout, ",rejected,no_prior_record,H175,"); got != 4 {
		t.Errorf("report lists %d no_prior_record records, want 4:\n%s", got, r.stdout)
	}
	// The citizen's opt-out, pulled back from İYS's changes feed.
	if !strings.Contains(r.stdout, "+905331234562,BIREYSEL,MESAJ,RET,") || !strings.Contains(r.stdout, ",IYS_MOBIL,cust-1001,synced,from_iys,") {
		t.Errorf("the citizen's opt-out was not pulled back:\n%s", r.stdout)
	}
	// The regulator's question: the consent's story, from the file line to
	// the opt-out pulled from İYS, and its chain intact.
	for _, want := range []string{"imported from file sms.txt, line 1", "İYS accepted it (accepted, transaction ",
		"pulled from İYS's changes: RET", "every history holds"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the demo does not show %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "email.txt:4: email: ") {
		t.Errorf("the bad email line was not reported:\n%s", r.stderr)
	}
}
