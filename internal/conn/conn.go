// Package conn opens waq's connections to NATS and Redis from the URLs of
// the configuration, the same way for the worker and every command.
package conn

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// Redis opens a client for rawURL:
//
//	redis://[user:password@]host:port[/db]        one server (rediss:// for TLS)
//	redis-sentinel://[:password@]host:port[,host:port...][/db]?master=NAME
//	                                               a primary managed by Sentinel
//	redis-cluster://[user:password@]host:port[,host:port...]
//	                                               a Redis Cluster (seed nodes)
//
// It does not connect; the first command does.
func Redis(rawURL string) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("redis url: want redis://host:port/db")
	}
	switch scheme {
	case "redis", "rediss":
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %v", err)
		}
		tune(&opts.PoolSize, &opts.MinIdleConns, &opts.ReadTimeout, &opts.WriteTimeout)
		return redis.NewClient(opts), nil
	case "redis-cluster":
		u, err := url.Parse("redis://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis url: %v", err)
		}
		addrs := strings.Split(u.Host, ",")
		opts := &redis.ClusterOptions{Addrs: addrs}
		if u.User != nil {
			opts.Username = u.User.Username()
			opts.Password, _ = u.User.Password()
		}
		tune(&opts.PoolSize, &opts.MinIdleConns, &opts.ReadTimeout, &opts.WriteTimeout)
		return redis.NewClusterClient(opts), nil
	case "redis-sentinel":
		u, err := url.Parse("redis://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis url: %v", err)
		}
		master := u.Query().Get("master")
		if master == "" {
			return nil, fmt.Errorf("redis url: redis-sentinel:// needs ?master=NAME")
		}
		opts := &redis.FailoverOptions{MasterName: master, SentinelAddrs: strings.Split(u.Host, ",")}
		if u.User != nil {
			opts.Password, _ = u.User.Password()
		}
		if sp := u.Query().Get("sentinel_password"); sp != "" {
			opts.SentinelPassword = sp
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			n, err := strconv.Atoi(db)
			if err != nil {
				return nil, fmt.Errorf("redis url: database %q is not a number", db)
			}
			opts.DB = n
		}
		tune(&opts.PoolSize, &opts.MinIdleConns, &opts.ReadTimeout, &opts.WriteTimeout)
		return redis.NewFailoverClient(opts), nil
	}
	return nil, fmt.Errorf("redis url: scheme %q, want redis, rediss, redis-sentinel or redis-cluster", scheme)
}

// tune sizes the pool for a worker with many sends in flight, and keeps
// timeouts short so that an unreachable Redis is noticed in seconds.
func tune(pool, minIdle *int, read, write *time.Duration) {
	if *pool == 0 {
		*pool = 256
	}
	if *minIdle == 0 {
		*minIdle = 4
	}
	if *read == 0 {
		*read = 3 * time.Second
	}
	if *write == 0 {
		*write = 3 * time.Second
	}
}

// NATS connects to the NATS server(s) at url (comma-separated for a
// cluster), reconnecting for ever. name identifies the client to the server.
func NATS(ctx context.Context, rawURL, name string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.Timeout(5 * time.Second),
		// Acks and naks are small; buffer them through a reconnect.
		nats.ReconnectBufSize(32 << 20),
	}, opts...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(rawURL, all...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("nats %s: %w", redactURL(rawURL), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func redactURL(v string) string {
	u, err := url.Parse(strings.Split(v, ",")[0])
	if err != nil {
		return "(url)"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	return u.String()
}

// redisLogger sends go-redis's own messages (dial failures while Redis is
// down, repeated on every attempt) to slog at debug level: the worker
// reports a down Redis once, in its own structured log, and its stderr
// stays one JSON stream.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

func init() { redis.SetLogger(redisLogger{}) }

// AutoPipelined returns a client that gathers the commands of concurrent
// callers into shared pipelines (go-redis's deferred autopipeliner): each
// command's result waits for its batch, so a caller may issue several
// commands and then read them, paying one round trip, and a worker with a
// hundred jobs in flight pays a fraction of a system call per command
// instead of two. Where the client cannot autopipeline, it is returned as is.
func AutoPipelined(rdb redis.UniversalClient) redis.Cmdable {
	var (
		ap  *redis.AutoPipeliner
		err error
	)
	switch c := rdb.(type) {
	case *redis.Client:
		ap, err = c.AsyncAutoPipeline()
	case *redis.ClusterClient:
		ap, err = c.AsyncAutoPipeline()
	default:
		return rdb
	}
	if err != nil {
		return rdb
	}
	return ap
}
