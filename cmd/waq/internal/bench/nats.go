package bench

import (
	"context"
	"os"
	"path/filepath"

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
	args := []string{"nats-server", "--store", store}
	if b.cfg.NATSSyncAlways {
		args = append(args, "--sync-always")
	}
	c, u, err := b.startServerChild(ctx, "nats", args, NATSReady, nil)
	if err != nil {
		return err
	}
	b.natsChild, b.natsURL = c, u
	return nil
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
