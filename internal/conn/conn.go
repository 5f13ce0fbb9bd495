// Package conn opens waq's connections to NATS and Redis from the URLs of
// the configuration, the same way for the worker and every command.
package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// Redis opens a client for rawURL, one of the forms ParseRedisURL reads.
// It does not connect; the first command does.
func Redis(rawURL string) (redis.UniversalClient, error) {
	u, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	return u.Client(), nil
}

// RedisKind is the kind of deployment a Redis URL names.
type RedisKind string

// The kinds of Redis deployment.
const (
	RedisSingle   RedisKind = "single"   // redis://, rediss://
	RedisSentinel RedisKind = "sentinel" // a primary managed by Sentinel
	RedisCluster  RedisKind = "cluster"  // a Redis Cluster
)

// RedisURL is a parsed Redis URL: the client it makes and what it names.
type RedisURL struct {
	Kind     RedisKind
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// ParseRedisURL reads a Redis URL without connecting:
//
//	redis://[user:password@]host[:port][/db]    one server (rediss:// for TLS; the
//	                                             query parameters of go-redis's ParseURL)
//	redis-sentinel://[user:password@]host[:port][,host[:port]...][/db]?master=NAME
//	                                             a primary managed by Sentinel: the
//	                                             sentinels' addresses (port 26379 by
//	                                             default); user and password are the
//	                                             primary's, sentinel_username= and
//	                                             sentinel_password= the sentinels'
//	redis-cluster://[user:password@]host[:port][,host[:port]...]
//	                                             a Redis Cluster: seed nodes (port 6379
//	                                             by default); database 0 only
//
// rediss-sentinel:// and rediss-cluster:// connect with TLS. An unknown
// query parameter is an error, not ignored: a misspelt master= or
// sentinel_password= would otherwise fail later, far from its cause.
func ParseRedisURL(rawURL string) (*RedisURL, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New("redis url: want redis://host:port/db, redis-sentinel://host:port,host:port?master=NAME or redis-cluster://host:port,host:port")
	}
	switch scheme {
	case "redis", "rediss":
		if strings.Contains(authority(rest), ",") {
			return nil, fmt.Errorf("redis url: several hosts need redis-sentinel:// or redis-cluster://, not %s://", scheme)
		}
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %v", err)
		}
		tune(&opts.PoolSize, &opts.MinIdleConns, &opts.ReadTimeout, &opts.WriteTimeout)
		return &RedisURL{Kind: RedisSingle, single: opts}, nil
	case "redis-sentinel", "rediss-sentinel":
		m, err := parseMultiHost(rest, "26379", "master", "sentinel_username", "sentinel_password")
		if err != nil {
			return nil, err
		}
		if m.query.Get("master") == "" {
			return nil, fmt.Errorf("redis url: %s:// needs ?master=NAME, the name the sentinels monitor", scheme)
		}
		opts := &redis.FailoverOptions{
			MasterName:       m.query.Get("master"),
			SentinelAddrs:    m.addrs,
			Username:         m.user,
			Password:         m.password,
			SentinelUsername: m.query.Get("sentinel_username"),
			SentinelPassword: m.query.Get("sentinel_password"),
			DB:               m.db,
		}
		if scheme == "rediss-sentinel" {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tune(&opts.PoolSize, &opts.MinIdleConns, &opts.ReadTimeout, &opts.WriteTimeout)
		return &RedisURL{Kind: RedisSentinel, failover: opts}, nil
	case "redis-cluster", "rediss-cluster":
		m, err := parseMultiHost(rest, "6379")
		if err != nil {
			return nil, err
		}
		if m.db != 0 {
			return nil, fmt.Errorf("redis url: a Redis Cluster has database 0 only, not %d", m.db)
		}
		opts := &redis.ClusterOptions{Addrs: m.addrs, Username: m.user, Password: m.password}
		if scheme == "rediss-cluster" {
			// No ServerName: each node's certificate is checked against
			// the address the cluster gives for it.
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tune(&opts.PoolSize, &opts.MinIdleConns, &opts.ReadTimeout, &opts.WriteTimeout)
		return &RedisURL{Kind: RedisCluster, cluster: opts}, nil
	}
	return nil, fmt.Errorf("redis url: scheme %q, want redis, rediss, redis-sentinel or redis-cluster", scheme)
}

// Client returns a new client; it does not connect, the first command does.
func (u *RedisURL) Client() redis.UniversalClient {
	switch u.Kind {
	case RedisSentinel:
		return redis.NewFailoverClient(u.failover)
	case RedisCluster:
		return redis.NewClusterClient(u.cluster)
	}
	return redis.NewClient(u.single)
}

// multiHost is a URL with a list of hosts, taken apart.
type multiHost struct {
	addrs          []string
	user, password string
	db             int
	query          url.Values
}

// authority is the part of a URL (after "scheme://") before its path or
// query: the user info and the hosts.
func authority(rest string) string {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return rest[:i]
	}
	return rest
}

// parseMultiHost reads [user:password@]host[:port][,host[:port]...][/db][?query].
// The hosts are split before url.Parse sees them: it takes the text after
// the last colon of the whole list for a port, and refuses IPv6 literals
// or a last host without a port.
func parseMultiHost(rest, defaultPort string, params ...string) (multiHost, error) {
	var m multiHost
	auth := authority(rest)
	tail := rest[len(auth):]
	hosts := auth
	userinfo := ""
	if at := strings.LastIndex(auth, "@"); at >= 0 {
		userinfo, hosts = auth[:at+1], auth[at+1:]
	}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := hostPort(strings.TrimSpace(h), defaultPort)
		if err != nil {
			return m, err
		}
		m.addrs = append(m.addrs, addr)
	}
	// The user info, path and query parse as those of a one-host URL.
	u, err := url.Parse("redis://" + userinfo + "host" + tail)
	if err != nil {
		return m, fmt.Errorf("redis url: %v", redactErr(err))
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return m, fmt.Errorf("redis url: database %q is not a number", db)
		}
		m.db = n
	}
	m.query = u.Query()
	for k := range m.query {
		if !slices.Contains(params, k) {
			if len(params) == 0 {
				return m, fmt.Errorf("redis url: unknown parameter %q (none is accepted here)", k)
			}
			return m, fmt.Errorf("redis url: unknown parameter %q (accepted: %s)", k, strings.Join(params, ", "))
		}
	}
	return m, nil
}

// hostPort checks one host of a list and gives it the default port when it
// has none.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("redis url: an empty host in the list")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: "host", "10.0.0.1" or "[::1]".
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		if strings.ContainsAny(host, "[]/@") || strings.Count(host, ":") == 1 {
			return "", fmt.Errorf("redis url: %q is not host:port", h)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return "", fmt.Errorf("redis url: %q is not host:port", h)
	}
	return net.JoinHostPort(host, port), nil
}

// redactErr drops the URL (and so any password) from a url.Parse error.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
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
			return nil, fmt.Errorf("nats %s: %w", Redact(rawURL), r.err)
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

// Redact hides the secrets of a NATS or Redis URL for an error message or a
// log line: the password (or a bare user part, which NATS uses for a token)
// and a sentinel_password parameter. It works on the text, not url.Parse,
// which refuses the host lists of redis-sentinel://, redis-cluster:// and
// NATS clusters.
func Redact(v string) string {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return "(a URL that does not parse)"
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	if at := strings.LastIndex(auth, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(auth[:at], ":"); hasPassword {
			rest = user + ":xxxxx" + rest[at:]
		} else {
			rest = "xxxxx" + rest[at:]
		}
	}
	if before, after, ok := strings.Cut(rest, "sentinel_password="); ok {
		_, tail, more := strings.Cut(after, "&")
		rest = before + "sentinel_password=xxxxx"
		if more {
			rest += "&" + tail
		}
	}
	return scheme + "://" + rest
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
