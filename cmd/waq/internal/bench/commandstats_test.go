package bench

import (
	"reflect"
	"testing"
)

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_hset:calls=24320,usec=148851,usec_per_call=6.12,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_config|set:calls=1,usec=4,usec_per_call=4.00\r\n" +
		"cmdstat_get:usec=2\r\n" + // no calls field
		"cmdstat_set:calls=many,usec=2\r\n" + // not a number
		"not a stat line\r\n" +
		"cmdstat_broken\r\n" +
		"\r\n"
	got := parseCommandStats(info)
	want := map[string]int64{"hset": 24320, "config|set": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestPerJob(t *testing.T) {
	before := map[string]int64{"hset": 10, "info": 3, "evalsha": 5}
	after := map[string]int64{"hset": 210, "info": 5, "evalsha": 45, "set": 400, "config|set": 1}
	got := perJob(before, after, 200)
	want := map[string]float64{"hset": 1, "evalsha": 0.2, "set": 2}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := perJob(before, after, 0); len(got) != 0 {
		t.Fatalf("no jobs: got %v", got)
	}
}

func TestParseMemoryInfo(t *testing.T) {
	m, err := parseMemoryInfo("# Memory\r\nused_memory:1031824\r\nused_memory_human:1.0M\r\nmem_clients_normal:20496\r\n")
	if err != nil || m["used_memory"] != 1031824 || m["mem_clients_normal"] != 20496 || len(m) != 2 {
		t.Errorf("good: %v %v", m, err)
	}
	for _, bad := range []string{"", "# Memory\r\nused_memory_human:1.0M\r\n", "used_memory:lots\r\n", "used_memory:-5\r\n", "used_memory:0\r\n"} {
		if m, err := parseMemoryInfo(bad); err == nil {
			t.Errorf("%q: %v, want an error", bad, m)
		}
	}
}
