package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// ModuleRoot is the directory of waq's go.mod.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binaries builds the waq command and a nats-server (from the module the
// tests already depend on) once per test process, and returns their paths.
func Binaries(t testing.TB) (waq, natsServer string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "waq-bin-")
		if buildErr != nil {
			return
		}
		for _, b := range [][2]string{{"waq", "./cmd/waq"}, {"nats-server", "github.com/nats-io/nats-server/v2"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, b[0]), b[1])
			cmd.Dir = ModuleRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "waq"), filepath.Join(buildDir, "nats-server")
}

// Process is a child process a test can kill and start again.
type Process struct {
	Name string
	Path string
	Args []string
	Env  []string
	Log  string // file that receives stdout and stderr
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// exit is how the last run ended (cmd.Wait's error), once it has; its
	// own lock, since Kill holds mu while it waits for the end.
	exitMu sync.Mutex
	exit   error
}

// Start starts the process (again).
func (p *Process) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		t.Fatalf("%s already running", p.Name)
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.exitMu.Lock()
	p.exit = nil
	p.exitMu.Unlock()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.exitMu.Lock()
		p.exit = err
		p.exitMu.Unlock()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

// Kill sends sig (SIGKILL: a crash; SIGTERM: a graceful stop) and waits up
// to timeout for the process to exit, then kills it.
func (p *Process) Kill(sig syscall.Signal, timeout time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// Exited says how the process ended when it is not running: "exit status
// 1", "signal: killed", or "" while it runs (or ended well).
func (p *Process) Exited() string {
	p.exitMu.Lock()
	defer p.exitMu.Unlock()
	if p.exit == nil {
		return ""
	}
	return p.exit.Error()
}

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// StartNATSProcess runs nats-server as a child process on a free port with
// JetStream storing in a fresh directory and syncing every write.
func StartNATSProcess(t testing.TB) (*Process, string) {
	t.Helper()
	_, bin := Binaries(t)
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "nats.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", port, filepath.Join(dir, "js"))), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{Name: "nats-server", Path: bin, Args: []string{"-c", conf}, Log: filepath.Join(dir, "nats.log")}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	p.Start(t)
	WaitNATS(t, url)
	t.Cleanup(func() { p.Kill(syscall.SIGKILL, time.Second) })
	return p, url
}

// WaitNATS waits until a NATS server answers at url with JetStream.
func WaitNATS(t testing.TB, url string) {
	t.Helper()
	Eventually(t, 15*time.Second, func() error {
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		_, err = nc.Request("$JS.API.INFO", nil, time.Second)
		return err
	})
}
