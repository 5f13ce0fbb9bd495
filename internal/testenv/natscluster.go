package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster is a cluster of nats-server processes (the binary Binaries
// builds) on loopback, with JetStream syncing every write.
type NATSCluster struct {
	Servers []*Process
	// Names are the servers' server_name, as JetStream reports leaders.
	Names []string
	// URLs are the servers' client URLs; URL joins them with commas, as
	// WAQ_NATS_URL takes them.
	URLs []string
	URL  string
}

// StartNATSCluster starts n nats-servers, each with a config file of its
// own (server_name, listen, cluster with routes to all, jetstream with
// sync_interval: always), and waits until JetStream answers on every
// server. They are killed when the test ends.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	_, bin := Binaries(t)
	c := &NATSCluster{}
	ports, routePorts := make([]int, n), make([]int, n)
	routes := make([]string, n)
	for i := range n {
		ports[i], routePorts[i] = FreePort(t), FreePort(t)
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i])
	}
	for i := range n {
		dir := t.TempDir()
		name := fmt.Sprintf("n%d", i+1)
		conf := filepath.Join(dir, "nats.conf")
		cfg := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
cluster {
  name: waq-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
jetstream {
  store_dir: %q
  sync_interval: always
}
`, name, ports[i], routePorts[i], strings.Join(routes, ", "), filepath.Join(dir, "js"))
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &Process{Name: "nats-" + name, Path: bin, Args: []string{"-c", conf}, Log: filepath.Join(dir, "nats.log")}
		p.Start(t)
		t.Cleanup(func() { p.Kill(syscall.SIGKILL, time.Second) })
		c.Servers = append(c.Servers, p)
		c.Names = append(c.Names, name)
		c.URLs = append(c.URLs, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	c.URL = strings.Join(c.URLs, ",")
	for _, u := range c.URLs {
		c.WaitReady(t, u)
	}
	return c
}

// WaitReady waits until the server at url answers JetStream requests,
// which in a cluster needs a meta leader.
func (c *NATSCluster) WaitReady(t testing.TB, url string) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err
	})
}

// Server returns the process of the server named name.
func (c *NATSCluster) Server(name string) (*Process, string) {
	for i, n := range c.Names {
		if n == name {
			return c.Servers[i], c.URLs[i]
		}
	}
	return nil, ""
}

// StreamLeader waits until the stream has a leader and returns its name.
func (c *NATSCluster) StreamLeader(t testing.TB, js jetstream.JetStream, stream string) string {
	t.Helper()
	var leader string
	Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		leader = info.Cluster.Leader
		return nil
	})
	return leader
}
