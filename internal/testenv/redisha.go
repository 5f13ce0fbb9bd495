package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a Redis Cluster of masters without replicas, each a
// redis-server child process on loopback.
type RedisCluster struct {
	Nodes []*Redis
	// URL is the redis-cluster:// URL that names every node.
	URL string
}

// StartRedisCluster starts masters cluster-enabled servers, joins them
// with redis-cli --cluster create, and waits until every node reports
// cluster_state:ok and knows the others. They are killed when the test
// ends.
func StartRedisCluster(t testing.TB, masters int) *RedisCluster {
	t.Helper()
	cli := redisCLIPath(t)
	rc := &RedisCluster{}
	addrs := make([]string, masters)
	for i := range masters {
		// The cluster bus port is the client port + 10000 unless given:
		// a free port past 55535 would have none.
		r := StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(FreePort(t)), "--cluster-node-timeout", "2000")
		rc.Nodes = append(rc.Nodes, r)
		addrs[i] = r.Addr
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, r := range rc.Nodes {
		c := r.Client(t)
		Eventually(t, 30*time.Second, func() error {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(masters)) {
				return fmt.Errorf("%s: cluster not ready: %s", r.Addr, firstLines(info, 6))
			}
			return nil
		})
	}
	rc.URL = "redis-cluster://" + strings.Join(addrs, ",")
	return rc
}

// Client returns a cluster client of the cluster, closed when the test ends.
func (rc *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := make([]string, len(rc.Nodes))
	for i, r := range rc.Nodes {
		addrs[i] = r.Addr
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisSentinel is a primary, its replicas and the sentinels that monitor
// it, each a redis-server child process on loopback.
type RedisSentinel struct {
	// Servers are the primary at the start, then the replicas. After a
	// failover the primary is another one: ask Primary.
	Servers   []*Redis
	Sentinels []*Redis
	// Master is the name the sentinels monitor.
	Master string
	// URL is the redis-sentinel:// URL of the sentinels.
	URL string
}

// StartRedisSentinel starts a primary with replicas and sentinels
// monitoring it (quorum: a majority), with a short down-after (1s) so that a
// failover takes seconds, and waits until every sentinel knows the replicas
// and the other sentinels.
func StartRedisSentinel(t testing.TB, replicas, sentinels int) *RedisSentinel {
	t.Helper()
	rs := &RedisSentinel{Master: "waq"}
	// A primary waits 5s by default before a full sync, for more replicas
	// to share it; here every second counts. Any server may become the
	// primary, so each gets the setting. DEBUG SLEEP lets a test hold a
	// replica back.
	quick := []string{"--repl-diskless-sync-delay", "0", "--enable-debug-command", "local"}
	primary := StartRedis(t, quick...)
	rs.Servers = append(rs.Servers, primary)
	for range replicas {
		rs.Servers = append(rs.Servers, StartRedis(t, append(quick, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))...))
	}
	WaitReplicas(t, primary, replicas)
	addrs := make([]string, sentinels)
	for i := range sentinels {
		r := &Redis{Port: FreePort(t), Dir: t.TempDir()}
		conf := filepath.Join(r.Dir, "sentinel.conf")
		// Sentinel rewrites its file as it learns; it must be writable.
		err := os.WriteFile(conf, []byte(fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %[4]s 1000
sentinel failover-timeout %[4]s 10000
sentinel parallel-syncs %[4]s 1
`, r.Port, r.Dir, filepath.Join(r.Dir, "redis.log"), rs.Master, primary.Port, sentinels/2+1)), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		r.args = []string{conf, "--sentinel"}
		r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
		r.URL = "redis://" + r.Addr
		r.Start(t)
		t.Cleanup(r.Stop)
		rs.Sentinels = append(rs.Sentinels, r)
		addrs[i] = r.Addr
	}
	for _, s := range rs.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		t.Cleanup(func() { _ = sc.Close() })
		Eventually(t, 30*time.Second, func() error {
			ctx := context.Background()
			others, err := sc.Sentinels(ctx, rs.Master).Result()
			if err != nil {
				return err
			}
			reps, err := sc.Replicas(ctx, rs.Master).Result()
			if err != nil {
				return err
			}
			if len(others) != sentinels-1 || len(reps) != replicas {
				return fmt.Errorf("sentinel %s knows %d sentinels and %d replicas", s.Addr, len(others), len(reps))
			}
			for _, r := range reps {
				if flags := r["flags"]; flags != "slave" {
					return fmt.Errorf("sentinel %s: replica %s:%s is %s", s.Addr, r["ip"], r["port"], flags)
				}
			}
			return nil
		})
	}
	rs.URL = "redis-sentinel://" + strings.Join(addrs, ",") + "/0?master=" + rs.Master
	return rs
}

// WaitReplicas waits until n replicas of primary are in sync and
// acknowledge its writes (a replica with AOF acknowledges only once it has
// rewritten its file after the sync).
func WaitReplicas(t testing.TB, primary *Redis, n int) {
	t.Helper()
	c := primary.Client(t)
	Eventually(t, 30*time.Second, func() error {
		ctx := context.Background()
		var wait *redis.IntCmd
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "testenv:replication-probe", time.Now().UnixNano(), time.Minute)
			wait = redis.NewIntCmd(ctx, "wait", n, 100)
			return p.Process(ctx, wait)
		})
		if err != nil {
			return err
		}
		if got := wait.Val(); got < int64(n) {
			info, _ := c.Info(ctx, "replication").Result()
			return fmt.Errorf("%d of %d replicas of %s acknowledge writes: %s", got, n, primary.Addr, firstLines(info, 5))
		}
		return nil
	})
}

// Primary is the server the sentinels name as the primary now, once they
// agree on one that answers as a master.
func (rs *RedisSentinel) Primary(t testing.TB) *Redis {
	t.Helper()
	var found *Redis
	Eventually(t, 30*time.Second, func() error {
		var addr string
		for _, s := range rs.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
			a, err := sc.GetMasterAddrByName(context.Background(), rs.Master).Result()
			sc.Close()
			if err != nil {
				return err
			}
			got := strings.Join(a, ":")
			if addr != "" && got != addr {
				return fmt.Errorf("sentinels disagree: %s and %s", addr, got)
			}
			addr = got
		}
		for _, r := range rs.Servers {
			if r.Addr != addr {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: r.Addr})
			defer c.Close()
			info, err := c.Info(context.Background(), "replication").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "role:master") {
				return fmt.Errorf("%s is named primary but is not a master yet", addr)
			}
			found = r
			return nil
		}
		return fmt.Errorf("the sentinels name %s, which is none of the servers", addr)
	})
	return found
}

// redisCLIPath finds redis-cli (it comes with redis-server).
func redisCLIPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found on PATH: install it (apt-get install redis-server, or redis-tools); .ci/run does")
	}
	return p
}

func firstLines(s string, n int) string {
	ls := strings.SplitN(strings.ReplaceAll(s, "\r", ""), "\n", n+1)
	if len(ls) > n {
		ls = ls[:n]
	}
	return strings.Join(ls, " ")
}
