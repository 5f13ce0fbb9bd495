// Package testenv starts the real servers waq's tests run against: an
// embedded NATS server with JetStream and a redis-server child process, each
// on a free loopback port, each cleaned up with the test.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NATS is an embedded NATS server with JetStream.
type NATS struct {
	Server   *server.Server
	URL      string
	StoreDir string
	Port     int
	// MonitorURL is the monitoring endpoint, when StartNATSWith asked for one.
	MonitorURL string
	tweak      func(*server.Options)
}

// StartNATS starts an embedded NATS server with JetStream on a free port,
// storing in a fresh directory; it is shut down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return StartNATSWith(t, nil)
}

// StartNATSWith is StartNATS with options changed by tweak (which may set
// HTTPPort to serve the monitoring endpoint).
func StartNATSWith(t testing.TB, tweak func(*server.Options)) *NATS {
	t.Helper()
	n := &NATS{StoreDir: t.TempDir(), Port: FreePort(t), tweak: tweak}
	n.start(t)
	t.Cleanup(n.Shutdown)
	return n
}

func (n *NATS) start(t testing.TB) {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      n.Port,
		JetStream: true,
		StoreDir:  n.StoreDir,
		NoLog:     true,
		NoSigs:    true,
		// Sync every write, as production should (SPEC §2).
		SyncAlways: true,
	}
	if n.tweak != nil {
		n.tweak(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats server not ready on port %d", n.Port)
	}
	n.Server = s
	n.URL = s.ClientURL()
	if opts.HTTPPort > 0 {
		n.MonitorURL = fmt.Sprintf("http://127.0.0.1:%d", opts.HTTPPort)
	}
}

// Shutdown stops the server and waits for it.
func (n *NATS) Shutdown() {
	if n.Server != nil {
		n.Server.Shutdown()
		n.Server.WaitForShutdown()
		n.Server = nil
	}
}

// Start starts a server that Shutdown stopped again, on the same port and
// store (a restart with time in between, for what happens meanwhile).
func (n *NATS) Start(t testing.TB) {
	t.Helper()
	if n.Server == nil {
		n.start(t)
	}
}

// Restart stops the server and starts it again on the same port and store.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.Shutdown()
	n.start(t)
}

// Connect opens a client connection and a JetStream context, closed when
// the test ends.
func (n *NATS) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return ConnectURL(t, n.URL)
}

// ConnectURL opens a client connection to the NATS server at url (an
// embedded one or a nats-server process) that reconnects without end, and a
// JetStream context; closed when the test ends.
func ConnectURL(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Redis is a redis-server child process.
type Redis struct {
	Addr string
	URL  string
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
}

// RedisServerPath finds redis-server, or skips... no: fails the test with
// the install hint, since CI installs it.
func RedisServerPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH: install it (apt-get install redis-server); .ci/run does")
	}
	return p
}

// StartRedis starts redis-server on a free port with AOF on (fsync every
// write), in a fresh directory; it is killed when the test ends. Small
// hashes are listpacks up to Redis's own defaults (128 fields of 64 bytes,
// as deploy/redis/redis.conf states): Debian's build starts with 512, which
// would flatter every memory figure taken here.
func StartRedis(t testing.TB, extraArgs ...string) *Redis {
	t.Helper()
	return startRedis(t, nil, append([]string{
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--protected-mode", "no",
		"--loglevel", "warning",
		"--hash-max-listpack-entries", "128",
		"--hash-max-listpack-value", "64",
	}, extraArgs...))
}

// startRedis starts redis-server with args on a free loopback port, in a
// fresh directory that also holds its log; it is killed when the test ends.
// Before are the arguments that must come first (a config file).
func startRedis(t testing.TB, before, args []string) *Redis {
	t.Helper()
	r := &Redis{Port: FreePort(t), Dir: t.TempDir()}
	r.args = append(append(before,
		"--port", strconv.Itoa(r.Port),
		"--bind", "127.0.0.1",
		"--dir", r.Dir,
		"--logfile", filepath.Join(r.Dir, "redis.log"),
	), args...)
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
	r.URL = "redis://" + r.Addr + "/0"
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// StartRedisConfig starts redis-server with the config file conf, on a free
// loopback port and in a fresh directory (the command line overrides the
// file's port, bind, dir and logfile); it is killed when the test ends. It
// shows that a shipped config file works with the installed Redis.
func StartRedisConfig(t testing.TB, conf string, extraArgs ...string) *Redis {
	t.Helper()
	return startRedis(t, []string{conf}, extraArgs)
}

// Start starts the process (again, after Stop) and waits until it answers.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(RedisServerPath(t), r.args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	r.done = make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.done)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
			t.Fatalf("redis-server exited at start: %s", strings.TrimSpace(string(log)))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer: %v", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the process (SIGKILL: what a crash looks like) and waits.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Client returns a client of this server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Eventually polls cond every few milliseconds until it returns nil or the
// timeout passes, then fails the test with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// ErrNotYet is a convenience for Eventually conditions.
var ErrNotYet = errors.New("not yet")

// UsedMemory is the used_memory of rdb's server without the latency
// histogram that Redis 7 keeps for each command it has run (about 24 KB
// each, whatever the data): it runs CONFIG RESETSTAT first, which frees
// them, so a figure taken before a test's first run of a command and one
// taken after differ by the data written, not by the commands used. It
// resets INFO commandstats too: read those before calling it.
func UsedMemory(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	ctx := context.Background()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatalf("INFO memory: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO memory: used_memory %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}
