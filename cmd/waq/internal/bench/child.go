package bench

// The bench's server children (NATS, the simulator): a process of their
// own, so that their CPU and memory are measured apart from the bench's.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
)

// startServerChild runs `waq bench ARGS...` and returns once it has printed
// ready followed by its URL. Every later line of its standard output goes
// to onLine (nil: dropped), on one goroutine.
func (b *bench) startServerChild(ctx context.Context, name string, args []string, ready string, onLine func([]byte)) (*child, string, error) {
	exe, err := b.exe()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, append([]string{"bench"}, args...)...)
	cmd.Env = append(os.Environ(), b.cfg.ChildEnv...)
	logPath := filepath.Join(b.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, "", err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start %s child: %w", name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), log: logPath}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		started := false
		for sc.Scan() {
			if !started {
				if u, ok := strings.CutPrefix(sc.Text(), ready); ok {
					started = true
					urls <- u
				}
				continue
			}
			if onLine != nil {
				onLine(sc.Bytes())
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	b.closers = append(b.closers, func() { devenv.Terminate(cmd.Process, c.done, 10*time.Second) })
	select {
	case u := <-urls:
		return c, u, nil
	case <-c.done:
		tail, _ := os.ReadFile(logPath)
		return nil, "", fmt.Errorf("%s child exited at start: %s", name, strings.TrimSpace(string(tail)))
	case <-time.After(30 * time.Second):
		return nil, "", fmt.Errorf("%s child not ready after 30s", name)
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

func (c *child) pid() int {
	if c == nil {
		return 0
	}
	return c.cmd.Process.Pid
}
