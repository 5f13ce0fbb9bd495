package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); without
// it, the module version Go recorded ("(devel)" in a checkout).
var version = ""

// versionLine is what `waq --version` prints: the version, the commit it
// was built from (with "+modified" when the tree had changes) and Go's
// version, e.g. "waq (devel) 8c29097+modified 2026-12-03T12:45:00Z go1.26.0".
func versionLine() string {
	parts := []string{"waq"}
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	parts = append(parts, v)
	if ok {
		var rev, at string
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "+modified"
		}
		parts = append(parts, strings.Fields(rev+" "+at)...)
	}
	return strings.Join(append(parts, runtime.Version()), " ")
}
