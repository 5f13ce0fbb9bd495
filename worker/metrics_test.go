package worker_test

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/worker"
)

// scrapeFamilies reads the worker's /metrics in the text format.
func scrapeFamilies(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// sample finds the value of family{labels}: a counter's or gauge's value,
// a histogram's count; false when there is no such series.
func sample(fams map[string]*dto.MetricFamily, family string, labels ...string) (float64, bool) {
	f := fams[family]
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAfterRun scrapes /metrics after a run with every kind of
// outcome and checks SPEC §5's names, their label sets (bounded: never a
// job id or a recipient), their types and their values.
func TestMetricsAfterRun(t *testing.T) {
	e := setup(t)
	_, err := e.fake.AddRules(
		fakegraph.Rule{Match: fakegraph.Match{JobID: "flaky"}, Times: 2, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "html"}, Times: 1, Respond: fakegraph.Response{Kind: fakegraph.KindHTML}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "outside-window"}, Respond: fakegraph.Response{Error: fakegraph.Code(131047)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "tpl"}, Respond: fakegraph.Response{Error: fakegraph.Code(132001)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	// Slow answers, two slots and at most two jobs delivered at a time keep
	// jobs undelivered in the stream long enough for the pending gauge to
	// show them (a worker may otherwise pull every job at once).
	sc := e.fake.Scenario()
	sc.Latency = fakegraph.Latency{Base: fakegraph.Duration(50 * time.Millisecond)}
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	const okJobs = 20
	var ids, recipients []string
	for i := 0; i < okJobs; i++ {
		ids = append(ids, fmt.Sprintf("ok-%d", i))
		recipients = append(recipients, fmt.Sprintf("1555300%04d", i))
		e.publish(t, textJob(ids[i], recipients[i]))
	}
	for i, id := range []string{"flaky", "html", "outside-window", "tpl"} {
		to := fmt.Sprintf("1555400%04d", i)
		ids, recipients = append(ids, id), append(recipients, to)
		if id == "tpl" {
			e.publish(t, templateJob(id, to, "order_update"))
		} else {
			e.publish(t, textJob(id, to))
		}
	}
	cfg := e.config()
	cfg.Concurrency, cfg.MaxAckPending = 2, 2
	r := e.startWith(t, cfg, nil, worker.Options{GaugeInterval: 50 * time.Millisecond})

	testenv.Eventually(t, 20*time.Second, func() error {
		fams, err := scrapeFamilies(r.url)
		if err != nil {
			return err
		}
		if v, _ := sample(fams, "waq_consumer_pending"); v < 1 {
			return fmt.Errorf("waq_consumer_pending %v while %d jobs wait", v, len(ids))
		}
		return nil
	})
	e.waitSent(t, 30*time.Second, append(ids[:okJobs:okJobs], "flaky", "html")...)
	e.waitParked(t, 20*time.Second, "outside-window")
	e.waitParked(t, 20*time.Second, "tpl")

	want := []struct {
		family string
		labels []string
		value  float64
	}{
		{"waq_sends_total", []string{"outcome", "sent", "phone_number_id", pn}, okJobs + 2},
		{"waq_sends_total", []string{"outcome", "failed", "phone_number_id", pn}, 5},
		{"waq_api_errors_total", []string{"code", "131000"}, 2},
		{"waq_api_errors_total", []string{"code", "http_502"}, 1},
		{"waq_api_errors_total", []string{"code", "131047"}, 1},
		{"waq_api_errors_total", []string{"code", "132001"}, 1},
		{"waq_retries_total", []string{"code", "131000"}, 2},
		{"waq_retries_total", []string{"code", "http_502"}, 1},
		{"waq_parked_total", []string{"reason", "window"}, 1},
		{"waq_parked_total", []string{"reason", "template"}, 1},
		{"waq_dead_letter_entries", []string{"reason", "window"}, 1},
		{"waq_dead_letter_entries", []string{"reason", "template"}, 1},
		{"waq_attempt_duration_seconds", []string{"outcome", "sent"}, okJobs + 2},
		{"waq_attempt_duration_seconds", []string{"outcome", "failed"}, 5},
		{"waq_consumer_pending", nil, 0},
		{"waq_consumer_ack_pending", nil, 0},
		{"waq_dependency_up", []string{"dependency", "nats"}, 1},
		{"waq_dependency_up", []string{"dependency", "redis"}, 1},
		{"waq_dependency_up", []string{"dependency", "graph_api"}, 1},
		{"waq_sends_in_flight", nil, 0},
	}
	var fams map[string]*dto.MetricFamily
	// Counters move just after the outcome is recorded, gauges on their
	// next refresh: wait for the whole picture.
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		fams, err = scrapeFamilies(r.url)
		if err != nil {
			return err
		}
		var diffs []string
		for _, w := range want {
			got, ok := sample(fams, w.family, w.labels...)
			if !ok || got != w.value {
				diffs = append(diffs, fmt.Sprintf("%s%v = %v (present %v), want %v", w.family, w.labels, got, ok, w.value))
			}
		}
		if len(diffs) > 0 {
			return errors.New(strings.Join(diffs, "; "))
		}
		return nil
	})

	// Types and label sets: exactly these labels, bounded values.
	types := map[string]dto.MetricType{
		"waq_sends_total": dto.MetricType_COUNTER, "waq_api_errors_total": dto.MetricType_COUNTER,
		"waq_retries_total": dto.MetricType_COUNTER, "waq_parked_total": dto.MetricType_COUNTER,
		"waq_dead_letter_entries": dto.MetricType_GAUGE, "waq_attempt_duration_seconds": dto.MetricType_HISTOGRAM,
		"waq_consumer_pending": dto.MetricType_GAUGE, "waq_dependency_up": dto.MetricType_GAUGE,
	}
	for name, typ := range types {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: missing or not a %v", name, typ)
		}
	}
	labelSets := map[string]string{
		"waq_sends_total": "outcome,phone_number_id", "waq_api_errors_total": "code", "waq_retries_total": "code",
		"waq_parked_total": "reason", "waq_dead_letter_entries": "reason", "waq_attempt_duration_seconds": "outcome",
		"waq_consumer_pending": "", "waq_consumer_ack_pending": "", "waq_dependency_up": "dependency",
	}
	bounded := map[string]*regexp.Regexp{
		"outcome":         regexp.MustCompile(`^(sent|failed|throttled)$`),
		"phone_number_id": regexp.MustCompile(`^` + pn + `$`),
		"code":            regexp.MustCompile(`^(\d{1,7}|http_\d{3}|transport)$`),
		"reason":          regexp.MustCompile(`^(window|template|retries_exhausted|invalid|undeliverable|expired|account|unknown)$`),
		"dependency":      regexp.MustCompile(`^(nats|redis|graph_api)$`),
		"scope":           regexp.MustCompile(`^[a-z_]+$`),
		"status":          regexp.MustCompile(`^[a-z_]+$`),
		"result":          regexp.MustCompile(`^[a-z_]+$`),
		"stage":           regexp.MustCompile(`^(pulled|waiting)$`),
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "waq_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
				re, ok := bounded[l.GetName()]
				if !ok {
					t.Errorf("%s has label %q, not one of the bounded sets", name, l.GetName())
				} else if !re.MatchString(l.GetValue()) {
					t.Errorf("%s{%s=%q}: not in the label's bounded set", name, l.GetName(), l.GetValue())
				}
				for i, id := range ids {
					if l.GetValue() == id || strings.Contains(l.GetValue(), recipients[i]) {
						t.Errorf("%s{%s=%q} holds a job id or a recipient", name, l.GetName(), l.GetValue())
					}
				}
			}
			sort.Strings(names)
			if want, ok := labelSets[name]; ok && strings.Join(names, ",") != want {
				t.Errorf("%s labels %v, want %s", name, names, want)
			}
		}
	}
	// The latency histogram: observations add up, and the +Inf bucket
	// holds them all.
	for _, m := range fams["waq_attempt_duration_seconds"].GetMetric() {
		h := m.GetHistogram()
		if h.GetSampleSum() <= 0 || len(h.GetBucket()) < 5 {
			t.Errorf("latency histogram %v: sum %v, %d buckets", m.GetLabel(), h.GetSampleSum(), len(h.GetBucket()))
		}
		// Every answer took at least the simulator's 50ms.
		if mean := h.GetSampleSum() / float64(h.GetSampleCount()); mean < 0.05 {
			t.Errorf("latency histogram %v: mean %.3fs, below the simulator's 50ms latency", m.GetLabel(), mean)
		}
	}
}
