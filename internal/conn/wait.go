package conn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated means a write reached the primary but fewer replicas than
// asked acknowledged it in time: a failover now could lose it, so it does
// not count as durable yet. waq's outcome writes are idempotent; the caller
// writes again.
var ErrNotReplicated = errors.New("redis: the write was not acknowledged by enough replicas in time")

// ErrWaitOnCluster means replica waits were asked of a Redis Cluster client:
// WAIT has no key, so go-redis cannot send it on the connection of each
// node a pipeline's keys went to, and on another connection it proves
// nothing. The worker refuses the combination at start.
var ErrWaitOnCluster = errors.New("redis: waiting for replicas (WAQ_REDIS_WAIT_REPLICAS) is not supported on a Redis Cluster")

// Replicas says how many replicas must acknowledge a write before it counts
// as durable. The zero value waits for none: the primary's answer suffices.
type Replicas struct {
	// N is the number of replicas.
	N int
	// Timeout bounds the wait. Defaults to 1s; at most 2s, so that the
	// wait ends before the client's read timeout (3s) does.
	Timeout time.Duration
}

// Pipelined runs fn's commands in one pipeline and, with r.N > 0, a WAIT
// for r.N replicas at its end, on the same connection and in the same round
// trip: WAIT covers the writes of the connection it is sent on. (On
// go-redis's autopipeliner too, Pipelined sends its commands together on
// one connection, not scattered over the batches other callers share.) It
// returns the first command's error, or ErrNotReplicated (wrapped) when
// fewer replicas acknowledged in time.
func (r Replicas) Pipelined(ctx context.Context, c redis.Cmdable, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	if r.N <= 0 {
		return c.Pipelined(ctx, fn)
	}
	if _, ok := c.(*redis.ClusterClient); ok {
		return nil, ErrWaitOnCluster
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	timeout = min(timeout, 2*time.Second)
	var wait *redis.IntCmd
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if err := fn(p); err != nil {
			return err
		}
		// Not p.Wait: Pipeliner lacks it.
		wait = redis.NewIntCmd(ctx, "wait", r.N, timeout.Milliseconds())
		return p.Process(ctx, wait)
	})
	if err != nil {
		return cmds, err
	}
	if n := wait.Val(); n < int64(r.N) {
		return cmds, fmt.Errorf("%w (%d of %d within %s)", ErrNotReplicated, n, r.N, timeout)
	}
	return cmds, nil
}

// RunScript runs script as script.Run does and, with r.N > 0, in a pipeline
// of its own ending in a WAIT (see Pipelined). A Redis that has forgotten
// the script (restarted, or a replica promoted by a failover) gets it loaded
// and the pipeline sent again: the scripts run here are idempotent writes.
// The error is the script's, or the wait's.
func (r Replicas) RunScript(ctx context.Context, c redis.Cmdable, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	if r.N <= 0 {
		res := script.Run(ctx, c, keys, args...)
		return res, res.Err()
	}
	var res *redis.Cmd
	run := func() error {
		_, err := r.Pipelined(ctx, c, func(p redis.Pipeliner) error {
			res = script.EvalSha(ctx, p, keys, args...)
			return nil
		})
		return err
	}
	err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err = script.Load(ctx, c).Err(); err == nil {
			err = run()
		}
	}
	return res, err
}
