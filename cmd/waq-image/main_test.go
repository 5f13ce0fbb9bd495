package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--binary is required"},
		{[]string{"--binary", "b"}, "--tag is required"},
		{[]string{"--binary", "b", "--tag", "waq:1"}, "--out is required"},
		{[]string{"--binary", "b", "--tag", "waq", "--out", "o"}, "want repository:tag"},
		{[]string{"--binary", "/nonexistent/waq", "--tag", "waq:1", "--out", "o"}, "no such file"},
		{[]string{"--binary", "b", "extra"}, "unexpected argument"},
		{[]string{"--nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
}
