package worker

import (
	"context"
	"sort"
	"sync"
)

// health tracks which dependencies are down. The consume loop waits on it
// before taking a job; /readyz reports it.
type health struct {
	mu      sync.Mutex
	down    map[string]error
	changed chan struct{} // closed and replaced on every change
}

func (h *health) init() {
	if h.down == nil {
		h.down = map[string]error{}
		h.changed = make(chan struct{})
	}
}

// set records dep as down (err != nil) or up.
func (h *health) set(dep string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.init()
	_, wasDown := h.down[dep]
	if err != nil {
		h.down[dep] = err
	} else {
		delete(h.down, dep)
	}
	if wasDown != (err != nil) {
		close(h.changed)
		h.changed = make(chan struct{})
	}
}

func (h *health) get(dep string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down[dep]
}

// snapshot lists what is down and why, sorted by name.
func (h *health) snapshot() []downDep {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]downDep, 0, len(h.down))
	for d, err := range h.down {
		out = append(out, downDep{Name: d, Error: err.Error()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type downDep struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// waitUp returns nil once nothing is down, or ctx's error.
func (h *health) waitUp(ctx context.Context) error {
	for {
		h.mu.Lock()
		h.init()
		n, ch := len(h.down), h.changed
		h.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// anyDown reports whether a dependency is down now.
func (h *health) anyDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.down) > 0
}

// whenDown returns a channel closed once a dependency is down (at once if
// one is), or when ctx ends.
func (h *health) whenDown(ctx context.Context) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		for {
			h.mu.Lock()
			h.init()
			n, ch := len(h.down), h.changed
			h.mu.Unlock()
			if n > 0 {
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
