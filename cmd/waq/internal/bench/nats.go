package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
)

// NATSReady is the line the NATS child prints, followed by its URL, once
// it accepts connections.
const NATSReady = "nats ready "

// startNATS starts the NATS server: a child process (`waq bench
// nats-server`) when the workers are processes, so that its CPU and memory
// are measured apart from the bench's; in this process otherwise.
func (b *bench) startNATS(ctx context.Context) error {
	store := filepath.Join(b.dir, "jetstream")
	if b.cfg.InProcess {
		n, err := devenv.StartNATS(devenv.NATSOptions{StoreDir: store, SyncAlways: b.cfg.NATSSyncAlways})
		if err != nil {
			return err
		}
		b.nats, b.natsURL = n, n.URL
		b.closers = append(b.closers, n.Close)
		return nil
	}
	exe, err := b.exe()
	if err != nil {
		return err
	}
	args := []string{"bench", "nats-server", "--store", store}
	if b.cfg.NATSSyncAlways {
		args = append(args, "--sync-always")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), b.cfg.ChildEnv...)
	logPath := filepath.Join(b.dir, "nats.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start nats-server child: %w", err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), log: logPath}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), NATSReady); ok {
				urls <- u
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	b.closers = append(b.closers, func() { devenv.Terminate(cmd.Process, c.done, 10*time.Second) })
	select {
	case u := <-urls:
		b.natsChild, b.natsURL = c, u
		return nil
	case <-c.done:
		tail, _ := os.ReadFile(logPath)
		return fmt.Errorf("nats-server child exited at start: %s", strings.TrimSpace(string(tail)))
	case <-time.After(30 * time.Second):
		return errors.New("nats-server child not ready after 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bench) exe() (string, error) {
	if b.cfg.Exe != "" {
		return b.cfg.Exe, nil
	}
	return os.Executable()
}

// ServeNATS runs an embedded NATS server with JetStream on a free loopback
// port until ctx ends, and prints NATSReady and its URL once it is ready:
// the bench's NATS child process.
func ServeNATS(ctx context.Context, store string, syncAlways bool, ready func(url string)) error {
	n, err := devenv.StartNATS(devenv.NATSOptions{StoreDir: store, SyncAlways: syncAlways})
	if err != nil {
		return err
	}
	defer n.Close()
	ready(n.URL)
	<-ctx.Done()
	return nil
}
