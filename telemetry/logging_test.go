package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestNewLoggerJSONByDefault: production logs are JSON unless asked
// otherwise, one object per line, at info and above.
func TestNewLoggerJSONByDefault(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "", "")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("parked", "job_id", "j1", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("want one JSON line, got %q (%v)", buf.String(), err)
	}
	if rec["msg"] != "parked" || rec["job_id"] != "j1" || rec["level"] != "INFO" {
		t.Errorf("line = %v", rec)
	}
	buf.Reset()
	text, _ := NewLogger(&buf, "text", "debug")
	text.Debug("shown")
	if !strings.Contains(buf.String(), "msg=shown") {
		t.Errorf("text logger wrote %q", buf.String())
	}
	for _, bad := range [][2]string{{"xml", ""}, {"", "loud"}} {
		if _, err := NewLogger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("NewLogger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
