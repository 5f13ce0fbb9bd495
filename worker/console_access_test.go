package worker_test

import (
	"testing"
	"time"

	"github.com/waqhq/waq/worker"
)

// TestConsoleAccess: what the console reads of a worker, before, during
// and after Run.
func TestConsoleAccess(t *testing.T) {
	e := setup(t)
	idle, err := worker.New(e.config(), func(string) string { return "" }, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := idle.Readiness(); r.Ready || len(r.Down) != 1 || r.Down[0].Name != "worker" || r.Paused == nil {
		t.Errorf("before Run: %+v", r)
	}
	if idle.Registry() == nil {
		t.Error("no registry")
	}
	run := e.start(t, e.config())
	if r := run.w.Readiness(); !r.Ready || len(r.Down) != 0 {
		t.Errorf("running: %+v", r)
	}
	mfs, err := run.w.Registry().Gather()
	if err != nil || len(mfs) == 0 {
		t.Errorf("gather: %d families, %v", len(mfs), err)
	}
	select {
	case <-run.w.Stopping():
		t.Fatal("stopping before the stop")
	default:
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-run.w.Stopping():
	case <-time.After(time.Second):
		t.Error("Stopping not closed after Run returned")
	}
}
