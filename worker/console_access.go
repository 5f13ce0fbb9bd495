package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/waqhq/waq/throttle"
)

// What the ops console (package console) reads of a running worker: its
// metrics registry and its readiness, the same numbers /metrics and /readyz
// serve.

// Registry is the Prometheus registry the worker's metrics are in.
func (w *Worker) Registry() *prometheus.Registry { return w.reg }

// Readiness is what /readyz would answer now. Before Run has connected it
// reports the worker as starting; it is safe to call from any goroutine.
func (w *Worker) Readiness() Readiness {
	// ready is stored after connect and the gate are set up: reading it
	// first orders the reads of w.nc and w.gate after their writes.
	if !w.ready.Load() {
		return Readiness{Down: []downDep{{Name: "worker", Error: "starting"}}, Paused: []throttle.State{}, Throttled: []throttle.State{}}
	}
	return w.readiness()
}

// Stopping is closed when Run begins its graceful stop; work that lives as
// long as the worker (the console's sampler) ends with it.
func (w *Worker) Stopping() <-chan struct{} { return w.stopping }
