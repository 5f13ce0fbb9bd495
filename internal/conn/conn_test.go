package conn

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/testenv"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		kind         RedisKind
		addrs        []string
		user, pass   string
		db           int
		master       string
		sentUser     string
		sentPass     string
		tls          bool
		errSubstring string
	}
	for _, tt := range []struct {
		url string
		want
	}{
		{"redis://127.0.0.1:6379/2", want{kind: RedisSingle, addrs: []string{"127.0.0.1:6379"}, db: 2}},
		{"rediss://u:p@redis.example:6380/0", want{kind: RedisSingle, addrs: []string{"redis.example:6380"}, user: "u", pass: "p", tls: true}},
		{"redis://a:1,b:2/0", want{errSubstring: "several hosts need redis-sentinel:// or redis-cluster://"}},
		{"redis-sentinel://s1:26379,s2:26379,s3/1?master=mymaster", want{kind: RedisSentinel,
			addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, db: 1, master: "mymaster"}},
		{"redis-sentinel://:pw@s1,[::1]:5000,10.0.0.3?master=m&sentinel_password=sp&sentinel_username=su", want{kind: RedisSentinel,
			addrs: []string{"s1:26379", "[::1]:5000", "10.0.0.3:26379"}, pass: "pw", master: "m", sentUser: "su", sentPass: "sp"}},
		{"rediss-sentinel://app:p%40ss@s1:26379?master=m", want{kind: RedisSentinel, addrs: []string{"s1:26379"}, user: "app", pass: "p@ss", master: "m", tls: true}},
		{"redis-sentinel://s1:26379", want{errSubstring: "needs ?master=NAME"}},
		{"redis-sentinel://s1:26379?mastr=m", want{errSubstring: `unknown parameter "mastr"`}},
		{"redis-sentinel://s1:26379/x?master=m", want{errSubstring: `database "x" is not a number`}},
		{"redis-cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002", want{kind: RedisCluster,
			addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}}},
		// The last host without a port: url.Parse alone refuses this one.
		{"redis-cluster://u:secret@n1:7000,n2:7001,n3/0", want{kind: RedisCluster, addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, user: "u", pass: "secret"}},
		{"rediss-cluster://n1:7000", want{kind: RedisCluster, addrs: []string{"n1:7000"}, tls: true}},
		{"redis-cluster://n1:7000/3", want{errSubstring: "database 0 only"}},
		{"redis-cluster://n1:7000?master=m", want{errSubstring: `unknown parameter "master"`}},
		{"redis-cluster://n1:7000,,n2:7001", want{errSubstring: "empty host"}},
		{"redis-cluster://n1:x", want{errSubstring: `"n1:x" is not host:port`}},
		{"redis-cluster://n1:70000", want{errSubstring: "is not host:port"}},
		{"mysql://x", want{errSubstring: `scheme "mysql"`}},
		{"127.0.0.1:6379", want{errSubstring: "want redis://"}},
	} {
		t.Run(tt.url, func(t *testing.T) {
			u, err := ParseRedisURL(tt.url)
			if tt.errSubstring != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSubstring) {
					t.Fatalf("error %v, want one with %q", err, tt.errSubstring)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Kind != tt.kind {
				t.Fatalf("kind %s, want %s", u.Kind, tt.kind)
			}
			var got want
			got.kind = u.Kind
			switch u.Kind {
			case RedisSingle:
				o := u.single
				got.addrs, got.user, got.pass, got.db, got.tls = []string{o.Addr}, o.Username, o.Password, o.DB, o.TLSConfig != nil
			case RedisSentinel:
				o := u.failover
				got.addrs, got.user, got.pass, got.db, got.tls = o.SentinelAddrs, o.Username, o.Password, o.DB, o.TLSConfig != nil
				got.master, got.sentUser, got.sentPass = o.MasterName, o.SentinelUsername, o.SentinelPassword
			case RedisCluster:
				o := u.cluster
				got.addrs, got.user, got.pass, got.tls = o.Addrs, o.Username, o.Password, o.TLSConfig != nil
			}
			if !slices.Equal(got.addrs, tt.addrs) || got.user != tt.user || got.pass != tt.pass || got.db != tt.db ||
				got.master != tt.master || got.sentUser != tt.sentUser || got.sentPass != tt.sentPass || got.tls != tt.tls {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			c := u.Client()
			defer c.Close()
		})
	}
}

// TestReplicasPipelined runs writes with a WAIT on a primary with one
// replica: they pass while the replica follows, and come back as
// ErrNotReplicated (the write done on the primary, not yet safe) once it is
// gone.
func TestReplicasPipelined(t *testing.T) {
	primary := testenv.StartRedis(t, "--repl-diskless-sync-delay", "0")
	replica := testenv.StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	rc := replica.Client(t)
	testenv.WaitReplicas(t, primary, 1)
	c, err := Redis(primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	write := func(p redis.Pipeliner) error {
		p.Set(ctx, "k", "v", 0)
		return nil
	}
	if _, err := (Replicas{N: 1}).Pipelined(ctx, c, write); err != nil {
		t.Fatalf("with a replica in sync: %v", err)
	}
	if v, err := rc.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("on the replica once the write returned: %q %v", v, err)
	}
	if _, err := (Replicas{}).Pipelined(ctx, c, write); err != nil {
		t.Fatalf("waiting for none: %v", err)
	}
	// A script, waited for, on a Redis that has forgotten it (as a promoted
	// replica has): loaded, and run once more.
	script := redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1]); return 7`)
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := (Replicas{N: 1}).RunScript(ctx, c, script, []string{"s"}, "x")
	if err != nil {
		t.Fatalf("script waited for, after SCRIPT FLUSH: %v", err)
	}
	if n, err := res.Int(); err != nil || n != 7 {
		t.Errorf("script answered %d %v, want 7", n, err)
	}
	if v, err := rc.Get(ctx, "s").Result(); err != nil || v != "x" {
		t.Errorf("the script's write on the replica once it returned: %q %v", v, err)
	}
	if res, err := (Replicas{}).RunScript(ctx, c, script, []string{"s"}, "y"); err != nil || res.Val() != int64(7) {
		t.Errorf("script waiting for none: %v %v", res.Val(), err)
	}
	replica.Stop()
	start := time.Now()
	_, err = (Replicas{N: 1, Timeout: 200 * time.Millisecond}).Pipelined(ctx, c, write)
	if !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("without the replica: %v, want ErrNotReplicated", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the wait took %s, bounded by 200ms", took)
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{primary.Addr}})
	defer cl.Close()
	if _, err := (Replicas{N: 1}).Pipelined(ctx, cl, write); !errors.Is(err, ErrWaitOnCluster) {
		t.Errorf("on a cluster client: %v", err)
	}
}
