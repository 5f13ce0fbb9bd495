package bench

// One phase: a fresh stream of jobs through one pipeline (baseline or full),
// waited for until the stream is empty, measured.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/queue"
)

// undeliverable is the code the parking phase's sends are answered with
// (131026: the policy parks it at once, reason undeliverable).
const undeliverable = 131026

// phase runs one pipeline over a fresh set of jobs: "baseline", "full", or
// "park" (the full pipeline over Config.Parked jobs that the simulator
// answers 131026, all parked).
func (b *bench) phase(ctx context.Context, name string) (*Phase, error) {
	n := b.cfg.Jobs
	if name == "park" {
		n = b.cfg.Parked
	}
	stream, prefix := b.cfg.Stream, queue.DefaultSubjectPrefix
	if name == "baseline" {
		stream, prefix = "WAQ_BENCH_BASELINE", "waqbench.baseline"
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	st, err := queue.EnsureStream(sctx, b.js, queue.StreamConfig{Name: stream, SubjectPrefix: prefix})
	cancel()
	if err != nil {
		return nil, err
	}
	if b.sim != nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := b.sim.reset(rctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("simulator reset: %w", err)
		}
		if name == "park" {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := b.sim.addRules(rctx, fakegraph.Rule{Name: "park", Respond: fakegraph.Response{Error: fakegraph.Code(undeliverable)}})
			cancel()
			if err != nil {
				return nil, fmt.Errorf("simulator rule: %w", err)
			}
		}
	}
	r := newRecorder(n)
	defer b.cur.Store(nil)
	// arm starts the clock of latencies and lets the simulator's callback
	// and the outcome listener see the recorder: right before publishing.
	var stopListen func()
	defer func() {
		if stopListen != nil {
			stopListen()
		}
	}()
	arm := func() error {
		r.t0 = time.Now()
		b.cur.Store(r)
		if name == "full" && b.keys {
			var err error
			stopListen, err = b.listenOutcomes(ctx, r)
			return err
		}
		return nil
	}

	p := &Phase{Name: name, Jobs: n}
	servers := b.servers()
	servers.mark()
	var cmds0 map[string]int64
	var mem0 redisState
	var memErr error
	if b.redis != nil && name != "baseline" {
		// The state first: it resets the command statistics.
		mem0, memErr = b.readState(ctx)
		cmds0, _ = commandCalls(ctx, b.rdb)
	}

	workers := &workerSet{}
	defer workers.stop()
	prod := queue.NewProducer(b.js, queue.ProducerOptions{SubjectPrefix: prefix})
	var start time.Time
	pubDone := make(chan struct{})
	prog := b.progress(name, r, st, n, time.Now())
	defer prog()
	if b.cfg.Backlog {
		if err := arm(); err != nil {
			return nil, err
		}
		b.publish(ctx, r, prod, n)
		close(pubDone)
		if err := b.publishError(r, n); err != nil {
			return nil, err
		}
		start = time.Now()
		if err := b.startWorkers(ctx, name, stream, workers); err != nil {
			return nil, err
		}
	} else {
		if !b.external {
			if err := b.startWorkers(ctx, name, stream, workers); err != nil {
				return nil, err
			}
			if err := b.waitPulling(ctx, st, name, workers); err != nil {
				return nil, err
			}
		}
		workers.markStart()
		if err := arm(); err != nil {
			return nil, err
		}
		start = r.t0
		go func() { defer close(pubDone); b.publish(ctx, r, prod, n) }()
	}
	end, err := b.waitDone(ctx, st, r, n, pubDone, workers)
	prog()
	if err != nil {
		return nil, err
	}
	if err := b.publishError(r, n); err != nil {
		return nil, err
	}
	if name == "full" && b.keys {
		// The last notifications trail the last ack by a little.
		waitFor(ctx, 2*time.Second, func() bool { return r.outcomes.Load() >= int64(n) })
	}
	p.Published = r.published.Load()
	p.Completed = p.Published
	p.Seconds = end.Sub(start).Seconds()
	if p.Seconds > 0 {
		p.Throughput = float64(p.Completed) / p.Seconds
	}
	if d := time.Duration(r.lastPubAt.Load()); d > 0 {
		p.PublishRate = float64(p.Published) / d.Seconds()
	}
	p.PublishToCall = r.toCall.summary()
	p.PublishToOutcome = r.toOutcome.summary()
	if b.sim != nil {
		if b.sim.pid() > 0 {
			// The child's calls come buffered: wait for the last ones.
			waitFor(ctx, 2*time.Second, func() bool { return r.calls.Load() >= p.Published })
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := b.sim.stats(sctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("simulator stats: %w", err)
		}
		p.Calls, p.Duplicates, p.Throttled = s.Requests, s.DuplicateSends, s.ByCode[130429]
		if name == "park" {
			p.Parked = s.ByCode[undeliverable]
		}
	}

	if ws := workers.usage(); ws != nil {
		ws.CPUPer10k = per10k(time.Duration(ws.CPUSeconds*float64(time.Second)), n)
		p.Processes = append(p.Processes, *ws)
	}
	if cmds0 != nil {
		if cmds1, err := commandCalls(ctx, b.rdb); err == nil {
			p.RedisCommands = perJob(cmds0, cmds1, n)
		}
		if mem1, err := b.readState(ctx); err == nil && memErr == nil {
			switch {
			case name == "park" && p.Parked > 0:
				p.RedisBytesPerParkedJob = float64(mem1.bytes-mem0.bytes) / float64(p.Parked)
			case name == "full" && n > 0:
				p.RedisBytesPerJob = float64(mem1.bytes-mem0.bytes) / float64(n)
				p.RedisRetainedBytesPerJob = p.RedisBytesPerJob - float64(mem1.short-mem0.short)/float64(n)
				p.BodyBytesPerJob = float64(mem1.bodies-mem0.bodies) / float64(n)
			}
			if b.cfg.KeyDump != nil {
				writeKeyDump(b.cfg.KeyDump, name, mem0, mem1, n)
			}
		}
	}
	p.Processes = append(p.Processes, servers.usage(n)...)
	return p, nil
}

// waitDone waits until every job is published and acknowledged (the
// work-queue stream is empty) and returns when that was first seen.
func (b *bench) waitDone(ctx context.Context, st jetstream.Stream, r *recorder, n int, pubDone <-chan struct{}, ws *workerSet) (time.Time, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	lastMsgs, lastChange, lastInfo := uint64(0), time.Now(), time.Time{}
	const stall = 60 * time.Second
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case err := <-ws.exited():
			return time.Time{}, err
		case <-t.C:
		}
		published := false
		select {
		case <-pubDone:
			published = true
		default:
		}
		// A stream info request costs the server more than a job does:
		// ask every 5ms only once every job has reached the Graph API (or
		// has its outcome), and twice a second before, to see stalls.
		pub := r.published.Load()
		near := published && (r.calls.Load() >= pub || (b.keys && r.outcomes.Load() >= pub) || (b.sim == nil && !b.keys))
		if !near && time.Since(lastInfo) < 500*time.Millisecond {
			continue
		}
		lastInfo = time.Now()
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := st.Info(ictx)
		cancel()
		if err != nil {
			continue
		}
		msgs := info.State.Msgs
		if published && msgs == 0 {
			return time.Now(), nil
		}
		if msgs != lastMsgs {
			lastMsgs, lastChange = msgs, time.Now()
		} else if time.Since(lastChange) > stall && r.published.Load() > 0 {
			return time.Time{}, fmt.Errorf("stalled: %d jobs left in the stream for %s (%s)", msgs, stall, ws.logHint())
		}
	}
}

// progress draws a bar on Progress until the returned func is called.
func (b *bench) progress(name string, r *recorder, st jetstream.Stream, n int, start time.Time) func() {
	if b.cfg.Progress == nil {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			var left uint64
			ictx, cancel := context.WithTimeout(context.Background(), time.Second)
			if info, err := st.Info(ictx); err == nil {
				left = info.State.Msgs
			}
			cancel()
			pub := r.published.Load()
			completed := max(pub-int64(left), 0)
			const width = 30
			fill := int(float64(width) * float64(completed) / float64(n))
			el := time.Since(start).Seconds()
			rate := 0.0
			if el > 0 {
				rate = float64(completed) / el
			}
			fmt.Fprintf(b.cfg.Progress, "\r%-8s [%s%s] %d/%d done, %d published, %.0f jobs/s ",
				name, strings.Repeat("#", min(fill, width)), strings.Repeat(".", width-min(fill, width)), completed, n, pub, rate)
			select {
			case <-stop:
				fmt.Fprintln(b.cfg.Progress)
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPulling waits until every worker has a pull request waiting on its
// consumer: then the first job published is taken at once.
func (b *bench) waitPulling(ctx context.Context, st jetstream.Stream, name string, ws *workerSet) error {
	durable := queue.DefaultConsumer
	if name == "baseline" {
		durable = BaselineDurable
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := st.Consumer(ictx, durable)
		if err == nil {
			var info *jetstream.ConsumerInfo
			if info, err = c.Info(ictx); err == nil && info.NumWaiting >= b.cfg.Workers {
				cancel()
				return nil
			}
		}
		cancel()
		select {
		case err := <-ws.exited():
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workers not pulling after 60s (%s)", ws.logHint())
		}
	}
}
