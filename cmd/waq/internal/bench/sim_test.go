package bench

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
)

func TestParseCall(t *testing.T) {
	id, at, ok := parseCall([]byte("c b17-42 1700000000123456789"))
	if !ok || id != "b17-42" || at.UnixNano() != 1700000000123456789 {
		t.Errorf("got %q %v %t", id, at, ok)
	}
	for _, bad := range []string{"", "c", "c ", "x b1 12", "c b1", "c b1 x", "c b1 -5", "c  12", "c b1 0", "c b1 99999999999999999999"} {
		if _, _, ok := parseCall([]byte(bad)); ok {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestCallWriter: what the child writes, the bench reads back; job ids
// that would break a line are left out.
func TestCallWriter(t *testing.T) {
	var out bytes.Buffer
	w := &callWriter{w: bufio.NewWriter(&out)}
	at := time.Unix(0, 1700000000000000042)
	w.send(fakegraph.Send{JobID: "job-1", Time: at})
	w.send(fakegraph.Send{JobID: "", Time: at})
	w.send(fakegraph.Send{JobID: "two words", Time: at})
	w.send(fakegraph.Send{JobID: "line\nbreak", Time: at})
	w.flush()
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("lines %q", lines)
	}
	id, got, ok := parseCall(lines[0])
	if !ok || id != "job-1" || !got.Equal(at) {
		t.Errorf("read back %q %v %t", id, got, ok)
	}
}

func TestSimOptionsArgs(t *testing.T) {
	a := SimOptions{Fast: true, Latency: 200 * time.Millisecond, Limits: true, MPS: 1000}.Args()
	want := []string{"sim-server", "--latency", "200ms", "--mps", "1000", "--fast", "--limits"}
	if len(a) != len(want) {
		t.Fatalf("args %q", a)
	}
	for i := range a {
		if a[i] != want[i] {
			t.Fatalf("args %q, want %q", a, want)
		}
	}
	// The lean mode enforces no limits even when asked to.
	if c := (SimOptions{Fast: true, Limits: true}).config(nil); c.Scenario.Limits.Throughput.Enabled || !c.Fast {
		t.Errorf("config %+v", c)
	}
}
