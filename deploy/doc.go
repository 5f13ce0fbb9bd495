// Package deploy holds what an operator applies next to waq workers:
// grafana/waq-dashboard.json (a Grafana dashboard over the worker's
// Prometheus metrics) and prometheus/waq-alerts.yaml (alerting rules, with
// their promtool unit tests in prometheus/waq-alerts_test.yaml).
//
// It has no code: its test checks that every metric the dashboard and the
// rules name is one telemetry.NewMetrics registers, so that a renamed
// metric cannot leave a panel or an alert silently empty.
package deploy
