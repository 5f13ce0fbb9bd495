// Package telemetrytest reads what telemetry registers, for the tests that
// keep the docs, the dashboards and the alert rules on the worker's metrics.
package telemetrytest

import (
	"fmt"
	"regexp"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waqhq/waq/telemetry"
)

// descRecorder is a Registerer that keeps the descriptions of what is
// registered with it, so that a vector with no series yet is seen too.
type descRecorder struct{ descs []*prometheus.Desc }

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return false }

// fqNameRe reads the name out of a Desc's String(), the only place the
// client library shows it ("Desc{fqName: \"waq_sends_total\", ...").
var fqNameRe = regexp.MustCompile(`fqName: "([^"]+)"`)

// MetricNames returns, sorted, the name of every metric
// telemetry.NewMetrics registers (a histogram by its base name).
func MetricNames() ([]string, error) {
	rec := &descRecorder{}
	telemetry.NewMetrics(rec)
	var names []string
	for _, d := range rec.descs {
		m := fqNameRe.FindStringSubmatch(d.String())
		if m == nil {
			return nil, fmt.Errorf("cannot read a metric name from %s", d)
		}
		names = append(names, m[1])
	}
	sort.Strings(names)
	return names, nil
}
