package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
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

// devSetting reads one address from a running `waq dev`, or "".
func devSetting(env *Env, key string) string {
	data, err := os.ReadFile(devStatePath(env))
	if err != nil {
		return ""
	}
	var m map[string]string
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	return m[key]
}
