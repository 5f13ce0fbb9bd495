package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/telemetry/telemetrytest"
)

const (
	dashboardFile = "grafana/waq-dashboard.json"
	alertsFile    = "prometheus/waq-alerts.yaml"
	alertsTest    = "prometheus/waq-alerts_test.yaml"
)

// registered returns the series names the worker exposes: every metric of
// telemetry.NewMetrics, with a histogram's _bucket, _sum and _count.
func registered(t *testing.T) map[string]bool {
	t.Helper()
	all, err := telemetrytest.MetricNames()
	if err != nil {
		t.Fatal(err)
	}
	// A histogram's name, from one observation gathered on a fresh registry.
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(prometheus.NewRegistry())
	reg.MustRegister(m.AttemptSeconds)
	m.AttemptSeconds.WithLabelValues("sent").Observe(0)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	histograms := map[string]bool{}
	for _, f := range fams {
		histograms[f.GetName()] = true
	}
	names := map[string]bool{}
	for _, n := range all {
		names[n] = true
		if histograms[n] {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[n+suffix] = true
			}
		}
	}
	// Not vacuous: the names SPEC §5 lists are there.
	for _, n := range []string{"waq_sends_total", "waq_api_errors_total", "waq_retries_total", "waq_parked_total",
		"waq_dead_letter_entries", "waq_attempt_duration_seconds_bucket", "waq_consumer_pending", "waq_paused", "waq_dependency_up"} {
		if !names[n] {
			t.Fatalf("telemetry.NewMetrics does not register %s (found %v)", n, keys(names))
		}
	}
	return names
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PromQL's functions, aggregations and keywords: identifiers that are not
// metric names.
var promqlWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`
		sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
		abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week day_of_year
		days_in_month delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
		histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase irate label_join
		label_replace ln log2 log10 minute month predict_linear rate resets round scalar sgn sort sort_desc sqrt
		time timestamp vector year avg_over_time min_over_time max_over_time sum_over_time count_over_time
		quantile_over_time stddev_over_time stdvar_over_time last_over_time present_over_time
		and or unless by without on ignoring group_left group_right offset bool atan2 inf nan`) {
		promqlWords[w] = true
	}
}

var (
	stringRe    = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matcherRe   = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRe     = regexp.MustCompile(`\[[^\[\]]*\]`)
	groupingRe  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVar  = regexp.MustCompile(`\$\{?\w+\}?`)
	numberRe    = regexp.MustCompile(`\b\d[\w.]*`)
	identRe     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*,\s*\w+\s*\)$`)
)

// metricNames returns the metric names a PromQL expression reads, and an
// error when its brackets do not balance. It is a lexer, not a parser:
// strings, label matchers, ranges, grouping labels, Grafana variables and
// numbers are removed, and what is left is a function, a keyword or a
// metric name.
func metricNames(expr string) ([]string, error) {
	if m := labelValues.FindStringSubmatch(strings.TrimSpace(expr)); m != nil {
		return []string{m[1]}, nil // Grafana's label_values(metric, label)
	}
	s := stringRe.ReplaceAllString(expr, `""`)
	if err := balanced(s); err != nil {
		return nil, err
	}
	s = grafanaVar.ReplaceAllString(s, "1")
	s = matcherRe.ReplaceAllString(s, " ")
	s = rangeRe.ReplaceAllString(s, " ")
	s = groupingRe.ReplaceAllString(s, " ")
	s = numberRe.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range identRe.FindAllStringIndex(s, -1) {
		w := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") {
			if !promqlWords[w] {
				return nil, fmt.Errorf("unknown PromQL function %q", w)
			}
			continue
		}
		if promqlWords[w] {
			continue
		}
		names = append(names, w)
	}
	return names, nil
}

func balanced(s string) error {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for _, r := range s {
		switch r {
		case '(', '[', '{':
			stack = append(stack, r)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return fmt.Errorf("unbalanced %q", r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	return nil
}

func TestMetricNamesLexer(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
		bad  bool
	}{
		{`sum by (reason) (rate(waq_parked_total{reason!="expired"}[5m]))`, "waq_parked_total", false},
		{`histogram_quantile(0.99, sum by (le) (rate(waq_attempt_duration_seconds_bucket[$__rate_interval])))`, "waq_attempt_duration_seconds_bucket", false},
		{`max(a) > 0 and on() sum(rate(b[10m] offset 1h)) == 0`, "a b", false},
		{`x / ignoring(reason) group_left sum(y)`, "x y", false},
		{`label_values(waq_sends_total, phone_number_id)`, "waq_sends_total", false},
		{`count(waq_paused{phone_number_id=~"$phone_number_id"} == 1) or vector(0)`, "waq_paused", false},
		{`sum(rate(waq_sends_total[5m])`, "", true},
		{`summ(waq_sends_total)`, "", true},
	} {
		got, err := metricNames(tc.expr)
		if (err != nil) != tc.bad || (!tc.bad && strings.Join(got, " ") != tc.want) {
			t.Errorf("metricNames(%s) = %v, %v; want %q (error %v)", tc.expr, got, err, tc.want, tc.bad)
		}
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func TestDashboard(t *testing.T) {
	known := registered(t)
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard title %q uid %q", d.Title, d.UID)
	}
	var exprs []string
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Title == "" || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %d %q: no title or a bad grid position %+v", p.ID, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the dashboard's datasource variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("panel %q: a target without an expression, or a repeated refId %q", p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil || q.Query == "" {
			var s string
			if json.Unmarshal(v.Query, &s) != nil || s == "" {
				t.Errorf("variable %s: no query", v.Name)
				continue
			}
			q.Query = s
		}
		exprs = append(exprs, q.Query)
	}
	checkExprs(t, dashboardFile, exprs, known)

	// What an on-call needs to see is there.
	all := strings.Join(exprs, "\n")
	for what, re := range map[string]string{
		"parked rate by reason":    `sum by \(reason\) \(rate\(waq_parked_total`,
		"131000 rate":              `rate\(waq_api_errors_total\{code="131000"\}`,
		"paused numbers":           `waq_paused`,
		"consumer pending":         `waq_consumer_pending`,
		"attempt latency p50":      `histogram_quantile\(0\.5, sum by \(le\) \(rate\(waq_attempt_duration_seconds_bucket`,
		"attempt latency p99":      `histogram_quantile\(0\.99, sum by \(le\) \(rate\(waq_attempt_duration_seconds_bucket`,
		"dependency up":            `waq_dependency_up`,
		"dead-letter size":         `waq_dead_letter_entries`,
		"sends by outcome":         `sum by \(outcome\) \(rate\(waq_sends_total`,
		"phone number selectable":  `label_values\(waq_sends_total, phone_number_id\)`,
		"retries by code":          `sum by \(code\) \(rate\(waq_retries_total`,
		"held back by rate limits": `waq_throttled_total`,
	} {
		if !regexp.MustCompile(re).MatchString(all) {
			t.Errorf("the dashboard shows no %s (no expression matches %s)", what, re)
		}
	}
}

// rules is a Prometheus rule file; unknown fields are errors.
type rules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// promDuration is Prometheus' duration syntax (5m, 1h30m, 0s).
var promDuration = regexp.MustCompile(`^(\d+(ms|s|m|h|d|w|y))+$`)

func TestAlertRules(t *testing.T) {
	known := registered(t)
	f, err := os.Open(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rf rules
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s has no groups", alertsFile)
	}
	var exprs []string
	names := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] || len(g.Rules) == 0 {
			t.Errorf("group %q: unnamed, repeated or empty", g.Name)
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			if r.Alert == "" || r.Record != "" {
				t.Errorf("group %s: a rule that is not an alert: %+v", g.Name, r)
				continue
			}
			if names[r.Alert] || !regexp.MustCompile(`^Waq[A-Z0-9][A-Za-z0-9]*$`).MatchString(r.Alert) {
				t.Errorf("alert %q: repeated, or not named Waq...", r.Alert)
			}
			names[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("alert %s: no expr", r.Alert)
			}
			if !promDuration.MatchString(r.For) {
				t.Errorf("alert %s: for %q is not a Prometheus duration", r.Alert, r.For)
			}
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			exprs = append(exprs, r.Expr)
		}
	}
	checkExprs(t, alertsFile, exprs, known)
	for _, a := range []string{"WaqDependencyDown", "WaqNumberPaused", "Waq131000High", "WaqParkedShareHigh", "WaqConsumerBacklog", "WaqAttemptLatencyHigh"} {
		if !names[a] {
			t.Errorf("no %s alert", a)
		}
	}

}

// TestAlertRulesPromtool runs the rules through Prometheus' own promtool
// (Debian's prometheus package): it parses every expression for real and
// runs the rules' unit tests. Without promtool it fails in CI and is
// skipped, loudly, elsewhere.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.MissingTool(t, "promtool", "apt-get install prometheus")
	}
	for _, args := range [][]string{{"check", "rules", filepath.Base(alertsFile)}, {"test", "rules", filepath.Base(alertsTest)}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(alertsFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// checkExprs checks that each expression's brackets balance and that every
// metric it reads is registered.
func checkExprs(t *testing.T, file string, exprs []string, known map[string]bool) {
	t.Helper()
	if len(exprs) == 0 {
		t.Fatalf("%s: no expressions", file)
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names, err := metricNames(e)
		if err != nil {
			t.Errorf("%s: %s: %v", file, e, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: %s reads no metric", file, e)
		}
		for _, n := range names {
			used[n] = true
			if !known[n] {
				t.Errorf("%s: %s reads %s, which the worker does not register", file, e, n)
			}
		}
	}
	t.Logf("%s reads %d metrics: %s", file, len(used), strings.Join(keys(used), " "))
}
