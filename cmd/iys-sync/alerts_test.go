package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/metrics"
	"github.com/iys-sync/iys-sync/internal/reconcile"
	"github.com/iys-sync/iys-sync/internal/sandbox"
	engine "github.com/iys-sync/iys-sync/internal/sync"
	"github.com/iys-sync/iys-sync/internal/webhook"
)

var (
	alertsFile    = filepath.Join("..", "..", "configs", "prometheus", "alerts.yaml")
	dashboardFile = filepath.Join("..", "..", "configs", "grafana", "iys-sync.json")
)

// ruleFile is Prometheus's rule file, as its loader reads it.
type ruleFile struct {
	Groups []struct {
		Name     string      `yaml:"name"`
		Interval string      `yaml:"interval"`
		Rules    []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

type alertRule struct {
	Alert         string            `yaml:"alert"`
	Record        string            `yaml:"record"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

func readAlertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt key is an error, as in Prometheus
	var f ruleFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if len(f.Groups) == 0 {
		t.Fatalf("%s has no group", alertsFile)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		rules = append(rules, g.Rules...)
	}
	return rules
}

// Each alert has what an operator needs at 3 a.m.: an expression, a for, a
// severity, and a summary, a description and an action that Prometheus can
// expand.
func TestAlertRulesAreWellFormed(t *testing.T) {
	rules := readAlertRules(t)
	// Prometheus's template functions used here, as stubs: only the syntax
	// and the names are checked.
	funcs := template.FuncMap{"humanizeDuration": fmtAny, "humanizePercentage": fmtAny, "humanize": fmtAny}
	seen := map[string]bool{}
	for _, r := range rules {
		name := r.Alert
		switch {
		case name == "" || r.Record != "":
			t.Errorf("rule %q: want an alert rule", r.Expr)
			continue
		case seen[name]:
			t.Errorf("alert %s twice", name)
		}
		seen[name] = true
		if strings.TrimSpace(r.Expr) == "" {
			t.Errorf("%s: no expr", name)
		}
		if !balanced(r.Expr) {
			t.Errorf("%s: unbalanced brackets or quotes in %q", name, r.Expr)
		}
		if _, err := model.ParseDuration(r.For); err != nil {
			t.Errorf("%s: for %q: %v", name, r.For, err)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: labels.severity %q, want critical or warning", name, s)
		}
		for _, a := range []string{"summary", "description", "action"} {
			text := r.Annotations[a]
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s: no annotations.%s", name, a)
				continue
			}
			// Prometheus defines these variables before expanding a text.
			const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
			tmpl, err := template.New(a).Funcs(funcs).Option("missingkey=error").Parse(defs + text)
			if err != nil {
				t.Errorf("%s: annotations.%s is not a valid template: %v", name, a, err)
				continue
			}
			data := struct {
				Labels, ExternalLabels map[string]string
				ExternalURL            string
				Value                  float64
			}{Labels: map[string]string{"brand_code": "600001", "instance": "all"}, Value: 1}
			if err := tmpl.Execute(io.Discard, data); err != nil {
				t.Errorf("%s: annotations.%s does not expand: %v", name, a, err)
			}
		}
	}
	for _, want := range []string{"IysSyncRunFailed", "IysSyncNoSuccessfulRun", "IysPullLagging", "IysSyncDeadlineAtRisk",
		"IysSyncRecordsFailed", "IysSyncBacklogGrowing", "IysErrorShareHigh", "IysPullQuarantined"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

func fmtAny(v any) string { return "" }

// balanced checks (), {} and [] nest and quotes close: what a hand-edited
// expression most often breaks.
func balanced(expr string) bool {
	var stack []byte
	pairs := map[byte]byte{')': '(', '}': '{', ']': '['}
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; c {
		case '"', '\'':
			j := strings.IndexByte(expr[i+1:], c)
			if j < 0 {
				return false
			}
			i += j + 1
		case '(', '{', '[':
			stack = append(stack, c)
		case ')', '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0
}

// dashboard is the part of Grafana's dashboard model checked here.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Repeat  string `json:"repeat"`
	GridPos *struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// The dashboard is valid JSON of Grafana's model, with a brand_code
// variable that the connector panels (a row repeated per connector) use
// in every query.
func TestDashboardIsWellFormed(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("uid %q, title %q, %d panels", d.UID, d.Title, len(d.Panels))
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		if v.Name == "brand_code" && (v.Type != "query" || !strings.Contains(v.Definition, "brand_code")) {
			t.Errorf("brand_code variable: type %q, definition %q", v.Type, v.Definition)
		}
	}
	if !slices.Contains(vars, "brand_code") || !slices.Contains(vars, "datasource") {
		t.Fatalf("variables %v, want brand_code and datasource", vars)
	}
	ids := map[int]bool{}
	repeated, perConnector := false, 0
	for _, p := range d.Panels {
		if ids[p.ID] || p.GridPos == nil || p.Title == "" {
			t.Errorf("panel %d %q: a duplicate id, or no gridPos or title", p.ID, p.Title)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			repeated = p.Repeat == "brand_code"
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || !balanced(tg.Expr) {
				t.Errorf("panel %q: query %q (refId %q)", p.Title, tg.Expr, tg.RefID)
			}
			if repeated && !strings.Contains(tg.Expr, `brand_code=~"$brand_code"`) {
				t.Errorf("panel %q of the per-connector row: query %q is not limited to $brand_code", p.Title, tg.Expr)
			}
		}
		if repeated {
			perConnector++
		}
	}
	if perConnector < 6 {
		t.Errorf("%d panels in a row repeated per brand_code, want the connector's panels there", perConnector)
	}
}

// pushgatewayOwn are names the rules read that the Pushgateway itself
// exports for each group pushed to it, not iys-sync.
var pushgatewayOwn = []string{"push_time_seconds"}

// Every metric an alert or a panel reads is one the binary exports: the
// registry set up as serve sets it up, after a run against the sandbox of
// one connector that completes (with a feed entry quarantined) and one that
// İYS refuses (a failed run, calls failed after retries).
func TestAlertsAndDashboardReadExportedMetrics(t *testing.T) {
	exported := exportedFamilies(t)
	var names []string
	for n := range exported {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("exported: %s", strings.Join(names, " "))

	check := func(where, expr string) {
		refs := metricNames(expr)
		if len(refs) == 0 {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		for _, n := range refs {
			if slices.Contains(pushgatewayOwn, n) {
				continue
			}
			if _, ok := exported[familyOf(n, exported)]; !ok {
				t.Errorf("%s reads %s, which iys-sync does not export", where, n)
			}
		}
	}
	for _, r := range readAlertRules(t) {
		check("alert "+r.Alert, r.Expr)
	}
	d := readDashboard(t)
	var panels []dashboardPanel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	for _, p := range panels {
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			// label_values(METRIC, LABEL): the metric only.
			def, _ := strings.CutPrefix(v.Definition, "label_values(")
			if i := strings.LastIndexByte(def, ','); i > 0 {
				def = def[:i]
			}
			check("variable "+v.Name, def)
		}
	}
}

// familyOf maps a histogram's or summary's series (_bucket, _sum, _count)
// to its family; other names are their own family.
func familyOf(name string, exported map[string]string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if typ := exported[base]; ok && (typ == "histogram" || typ == "summary") {
			return base
		}
	}
	return name
}

// exportedFamilies sets the metrics up as serve does, runs the sync once
// against the sandbox, and reads /metrics: family name → type.
func exportedFamilies(t *testing.T) map[string]string {
	t.Helper()
	environ := sandboxEnv(t, sandbox.Options{
		Brands:     []sandbox.Brand{{IYSCode: "700001", BrandCode: "600002", Name: "Refused"}},
		DenyBrands: []string{"600002"},
		FeedEntry: func(_, _ string, m map[string]any) {
			if m["recipient"] == "+905330000002" {
				delete(m, "recipientType") // unreadable: quarantined
			}
		},
	})
	at := uploadTime(time.Now().Add(-time.Hour))
	f := writeFile(t, "s.txt", "905331234562; SMS; ONAY; "+at+"\n905331234563; SMS; RET; "+at+"\n")
	for _, brand := range []string{"600001", "600002"} {
		if r := runCmd(t, environ, "install", "--brand-code", brand, "--iys-code", "700001", "--skip-verify"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		if r := runCmd(t, environ, "import", "--brand-code", brand, "--channel", "sms", f); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	sandboxAdmin(t, environ).Citizen(sandboxRecord("+905330000002", "RET", "IYS_WEB"))

	cfg := config.Default()
	cfg.DatabaseURL, cfg.APIURL = environ["IYS_DATABASE_URL"], environ["IYS_API_URL"]
	cfg.Username, cfg.Password, cfg.IntegratorCode = environ["IYS_USERNAME"], environ["IYS_PASSWORD"], environ["IYS_INTEGRATOR_CODE"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := &env{now: time.Now}
	log := zap.NewNop()
	// serve's own steps: metrics.New, newSyncer, watchConnectors, each
	// run's summary into Runs, then the reconciliation of the previous day.
	m := metrics.New()
	s, err := newSyncer(ctx, cfg, log, m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := watchConnectors(ctx, e, cfg, s, m, "", log); err != nil {
		t.Fatal(err)
	}
	sum, err := s.eng.Run(ctx, engine.RunRequest{Trigger: engine.TriggerSchedule, Deadline: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	m.Runs(sum, time.Now())
	reconcileNight(ctx, s, m, reconcile.ModeReport, engine.Night{Tick: time.Now(), Deadline: time.Now().Add(time.Minute)}, sum, log)
	// The webhooks deliver the changes the run and the pull made.
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer recv.Close()
	wh, err := webhook.New(webhook.Options{URL: recv.URL, Secret: "k", Store: s.st, Metrics: m, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}

	code, body := httpGet(t, m.Handler(func(context.Context) error { return nil }), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	families := map[string]string{}
	for _, l := range strings.Split(body, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = f[3]
		}
	}
	return families
}

// metricNames lists the metric names a PromQL expression reads: the
// identifiers left once strings, label matchers, ranges, numbers and
// durations, $variables, functions and aggregations (an identifier before
// "("), grouping label lists and keywords are set aside.
func metricNames(expr string) []string {
	var out []string
	skipTo := func(i int, closer byte) int {
		for j := i + 1; j < len(expr); j++ {
			switch expr[j] {
			case '\\':
				j++
			case '"', '\'':
				if closer != expr[j] {
					q := strings.IndexByte(expr[j+1:], expr[j])
					if q < 0 {
						return len(expr)
					}
					j += q + 1
					continue
				}
				return j + 1
			case closer:
				return j + 1
			}
		}
		return len(expr)
	}
	ident := func(c byte) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	nextNonSpace := func(i int) byte {
		for ; i < len(expr); i++ {
			if expr[i] != ' ' && expr[i] != '\n' && expr[i] != '\t' {
				return expr[i]
			}
		}
		return 0
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'':
			i = skipTo(i, c)
		case c == '{':
			i = skipTo(i, '}')
		case c == '[':
			i = skipTo(i, ']')
		case c == '$' || c >= '0' && c <= '9' || c == '.': // a variable, a number or a duration
			i++
			for i < len(expr) && (ident(expr[i]) || expr[i] == '.' || expr[i] == '{' || expr[i] == '}') {
				i++
			}
		case ident(c):
			j := i
			for j < len(expr) && ident(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := nextNonSpace(j)
			switch {
			case groupingKeywords[word]:
				if next == '(' {
					j = skipTo(strings.IndexByte(expr[j:], '(')+j, ')')
				}
			case promqlKeywords[word], next == '(':
			default:
				out = append(out, word)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

var groupingKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "offset": true, "bool": true, "atan2": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// The tokenizer finds the metrics of an expression and nothing else.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (brand_code) (rate(iys_a_total{result=~"x|y", b="}"}[5m])) / on (job) group_left (brand_code) iys_b offset 1d > 0.1`: {"iys_a_total", "iys_b"},
		`time() - max by (brand_code) (iys_c_seconds) > 26 * 3600 unless on (job, instance) push_time_seconds`:                       {"iys_c_seconds", "push_time_seconds"},
		`histogram_quantile(0.95, sum by (le) (rate(iys_d_bucket{brand_code=~"$brand_code"}[$__rate_interval])))`:                    {"iys_d_bucket"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

// httpGet serves one GET from h.
func httpGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}
