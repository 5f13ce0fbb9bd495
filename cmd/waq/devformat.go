package main

// The small formatters of the `waq dev` screen.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/waqhq/waq/throttle"
)

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func total(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

func counts(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func countsInt(m map[string]int64) string {
	if len(m) == 0 {
		return "empty"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func codes(m map[int]int64) string {
	if len(m) == 0 {
		return "none"
	}
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func states(ss []throttle.State) string {
	if len(ss) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(ss))
	for _, st := range ss {
		name := st.PhoneNumberID
		if name == "" {
			name = st.Key
		}
		switch {
		case st.Rate > 0 && st.MPS > 0:
			parts = append(parts, fmt.Sprintf("%s at %.0f/%d msg/s (%s)", name, st.Rate, st.MPS, st.Reason))
		default:
			parts = append(parts, fmt.Sprintf("%s (%s)", name, st.Reason))
		}
	}
	return strings.Join(parts, ", ")
}
