package main

// The state file of a running `waq dev`: the addresses of what it started,
// so that commands in a second terminal find them without flags (resolve).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// writeDevState writes the state file atomically (a reader never sees half
// of it), readable by this user only.
func writeDevState(path string, m map[string]string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// removeDevState removes the state file if it is still this process's.
func removeDevState(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var m map[string]string
	if json.Unmarshal(data, &m) == nil && m["pid"] != strconv.Itoa(os.Getpid()) {
		return
	}
	os.Remove(path)
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
