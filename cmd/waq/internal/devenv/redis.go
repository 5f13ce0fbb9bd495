package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Redis kinds, as RedisOptions.Mode takes them and Redis.Kind reports them.
const (
	RedisAuto   = "auto"         // redis-server when on PATH, else in-process
	RedisServer = "redis-server" // a redis-server child process
	RedisMemory = "in-process"   // miniredis, in this process
)

// RedisOptions configure StartRedis.
type RedisOptions struct {
	// Mode is RedisAuto (the default), RedisServer or RedisMemory.
	Mode string
	// Port is the preferred port; 0 picks a free one.
	Port int
	// Dir is redis-server's working directory (its log and append-only
	// file); required for RedisServer.
	Dir string
	// AppendFsync is redis-server's appendfsync: "always", "everysec" or
	// "no"; "" turns the append-only file off.
	AppendFsync string
}

// Redis is a running Redis.
type Redis struct {
	// URL is redis://127.0.0.1:PORT/0.
	URL  string
	Addr string
	// Kind is RedisServer or RedisMemory; Version the server's version.
	Kind    string
	Version string
	// PID is the redis-server child's process id; 0 in process.
	PID int
	// Log is redis-server's log file.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
	mini *miniredis.Miniredis
	stop chan struct{}
}

// Describe says in a few words what Redis this is, for the screen.
func (r *Redis) Describe() string {
	if r.Kind == RedisServer {
		return fmt.Sprintf("redis-server %s (child process %d)", r.Version, r.PID)
	}
	return "in-process Redis-compatible server (miniredis " + r.Version + "; no redis-server on PATH)"
}

// StartRedis starts a Redis on loopback.
func StartRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	mode := opts.Mode
	if mode == "" {
		mode = RedisAuto
	}
	path, lookErr := exec.LookPath("redis-server")
	switch mode {
	case RedisAuto:
		if lookErr == nil {
			return startRedisServer(ctx, path, opts)
		}
		return startMiniredis(opts)
	case RedisServer:
		if lookErr != nil {
			return nil, errors.New("redis-server not found on PATH (install it, e.g. apt-get install redis-server)")
		}
		return startRedisServer(ctx, path, opts)
	case RedisMemory:
		return startMiniredis(opts)
	}
	return nil, fmt.Errorf("redis mode %q: want %s, %s or %s", mode, RedisAuto, RedisServer, RedisMemory)
}

var versionRE = regexp.MustCompile(`v=([0-9][0-9.]*)`)

func startRedisServer(ctx context.Context, path string, opts RedisOptions) (*Redis, error) {
	if opts.Dir == "" {
		return nil, errors.New("redis-server: no directory")
	}
	port, err := PickPort(opts.Port)
	if err != nil {
		return nil, err
	}
	r := &Redis{Kind: RedisServer, Addr: fmt.Sprintf("%s:%d", Loopback, port), Log: filepath.Join(opts.Dir, "redis.log")}
	r.URL = "redis://" + r.Addr + "/0"
	if out, err := exec.Command(path, "--version").Output(); err == nil {
		if m := versionRE.FindSubmatch(out); m != nil {
			r.Version = string(m[1])
		}
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", Loopback,
		"--dir", opts.Dir,
		"--save", "",
		"--protected-mode", "no",
		"--loglevel", "warning",
		"--logfile", r.Log,
		// Redis's own defaults, which deploy/redis/redis.conf states and
		// the sizing figures assume; Debian's build starts with 512.
		"--hash-max-listpack-entries", "128",
		"--hash-max-listpack-value", "64",
	}
	if opts.AppendFsync != "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", opts.AppendFsync)
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(path, args...)
	// Its own process group: the terminal's Ctrl-C goes to waq only, which
	// stops the worker while Redis still answers, then stops Redis. The
	// death signal covers waq being killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r.cmd, r.PID, r.done = cmd, cmd.Process.Pid, make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.done) }()

	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(r.Log)
			return nil, fmt.Errorf("redis-server exited at start: %s", strings.TrimSpace(string(log)))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Close()
			return nil, fmt.Errorf("redis-server on %s did not answer: %v", r.Addr, err)
		}
		time.Sleep(wait)
	}
}

func startMiniredis(opts RedisOptions) (*Redis, error) {
	m := miniredis.NewMiniRedis()
	var err error
	for _, pref := range []int{opts.Port, 0} {
		var port int
		if port, err = PickPort(pref); err != nil {
			return nil, err
		}
		if err = m.StartAddr(fmt.Sprintf("%s:%d", Loopback, port)); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("start in-process redis: %w", err)
	}
	r := &Redis{Kind: RedisMemory, Addr: m.Addr(), Version: "v2", mini: m, stop: make(chan struct{})}
	r.URL = "redis://" + r.Addr + "/0"
	// miniredis only ages keys when told to: move its clock along with the
	// real one, so that TTLs (retention, throttle state) run out as they
	// would on a real Redis.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-r.stop:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return r, nil
}

// Close stops Redis: a child gets SIGTERM (it flushes its append-only
// file), then SIGKILL after 5s, and is waited for.
func (r *Redis) Close() {
	if r == nil {
		return
	}
	if r.mini != nil {
		close(r.stop)
		r.mini.Close()
		r.mini = nil
		return
	}
	if r.cmd == nil {
		return
	}
	Terminate(r.cmd.Process, r.done, 5*time.Second)
	r.cmd = nil
}
