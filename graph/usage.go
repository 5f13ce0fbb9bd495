package graph

import (
	"encoding/json"
	"net/http"
	"time"
)

// Usage is what Meta's rate-limit headers say of an answer.
type Usage struct {
	// App is X-App-Usage: percentages of the app's limits used.
	App *AppUsage `json:"app,omitempty"`
	// Business is X-Business-Use-Case-Usage, keyed by business (WABA) id.
	Business map[string][]BusinessUsage `json:"business,omitempty"`
}

// AppUsage is the X-App-Usage header.
type AppUsage struct {
	CallCount    int `json:"call_count"`
	TotalTime    int `json:"total_time"`
	TotalCPUTime int `json:"total_cputime"`
}

// BusinessUsage is one entry of the X-Business-Use-Case-Usage header.
type BusinessUsage struct {
	Type         string `json:"type"`
	CallCount    int    `json:"call_count"`
	TotalTime    int    `json:"total_time"`
	TotalCPUTime int    `json:"total_cputime"`
	// EstimatedTimeToRegainAccess is in minutes, as Meta sends it.
	EstimatedTimeToRegainAccess int `json:"estimated_time_to_regain_access"`
}

// ParseUsage reads the usage headers of an answer. It returns nil when there
// are none; a header that does not parse is ignored rather than failing the
// answer it came with.
func ParseUsage(h http.Header) *Usage {
	app := h.Get("X-App-Usage")
	buc := h.Get("X-Business-Use-Case-Usage")
	if app == "" && buc == "" {
		return nil
	}
	u := &Usage{}
	if app != "" {
		var a AppUsage
		if json.Unmarshal([]byte(app), &a) == nil {
			u.App = &a
		}
	}
	if buc != "" {
		var b map[string][]BusinessUsage
		if json.Unmarshal([]byte(buc), &b) == nil {
			u.Business = b
		}
	}
	if u.App == nil && u.Business == nil {
		return nil
	}
	return u
}

// RegainAccessIn is the longest estimated_time_to_regain_access among the
// business entries, or 0 when none gives one.
func (u *Usage) RegainAccessIn() time.Duration {
	if u == nil {
		return 0
	}
	var max int
	for _, entries := range u.Business {
		for _, e := range entries {
			if e.EstimatedTimeToRegainAccess > max {
				max = e.EstimatedTimeToRegainAccess
			}
		}
	}
	return time.Duration(max) * time.Minute
}
