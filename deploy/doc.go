// Package deploy holds what an operator applies next to waq workers:
// grafana/waq-dashboard.json (a Grafana dashboard over the worker's
// Prometheus metrics) and prometheus/waq-alerts.yaml (alerting rules, with
// their promtool unit tests in prometheus/waq-alerts_test.yaml);
// kubernetes/ (the worker's Deployment, ConfigMaps, Service,
// PodDisruptionBudget, a Secret template; kubectl apply -k), nats/nats.conf
// (a three-server JetStream cluster syncing every write) and
// redis/redis.conf (append-only file, no eviction).
//
// It has no code: its test checks that every metric the dashboard and the
// rules name is one telemetry.NewMetrics registers, so that a renamed
// metric cannot leave a panel or an alert silently empty; manifests_test.go
// checks that the manifests set only settings the worker reads, with values
// it accepts, that a worker with them serves the probes' paths, and that
// the NATS and Redis files parse and keep their durability settings.
package deploy
