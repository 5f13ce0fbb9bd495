package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// readAllLimited reads r up to max bytes, refusing more.
func readAllLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("more than %d bytes", max)
	}
	return b, nil
}

func replicasFromEnv(env *Env) int {
	n, err := strconv.Atoi(env.Getenv("WAQ_STREAM_REPLICAS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// devStatePath is where `waq dev` writes the addresses of what it started,
// so that commands in a second terminal find them without flags.
func devStatePath(env *Env) string {
	if p := env.Getenv("WAQ_DEV_STATE"); p != "" {
		return p
	}
	dir := env.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "waq-dev.json")
}

// devSetting reads one address from a running `waq dev`, or "". A file
// left behind by a `waq dev` that died without cleaning up (its "pid" is no
// longer alive) is ignored: its addresses point at nothing.
func devSetting(env *Env, key string) string {
	m := readDevState(devStatePath(env))
	if m == nil {
		return ""
	}
	return m[key]
}

// readDevState reads the state file of a running `waq dev`; nil when there
// is none, it does not parse, or its process is gone.
func readDevState(path string) map[string]string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var m map[string]string
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	if pid, err := strconv.Atoi(m["pid"]); err != nil || !processAlive(pid) {
		return nil
	}
	return m
}

// processAlive reports whether a process with that pid exists (signal 0
// checks without signalling; EPERM means it exists under another user).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
