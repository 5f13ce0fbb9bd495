package fakegraph

import (
	"encoding/json"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "250ms", "6s", "24h" in YAML and
// JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// IsZero reports whether d is zero, for omitzero.
func (d Duration) IsZero() bool { return d == 0 }

// String is d as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string: "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "1.5s" (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: want a string like \"250ms\", got %s", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads "250ms", "6s", "24h" (0 alone is allowed too).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &lineError{line: n.Line, msg: "duration: want a string like \"250ms\""}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &lineError{line: n.Line, msg: err.Error()}
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a number with a unit, like 250ms, 6s or 24h", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q: must not be negative", s)
	}
	return Duration(v), nil
}
