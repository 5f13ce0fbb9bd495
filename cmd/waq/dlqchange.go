package main

// waq dlq replay and purge: the operations that change the store.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
)

func dlqReplay(ctx context.Context, env *Env, c *dlqCmd) error {
	req, store, done, err := openFor(ctx, env, c, c.p.ReplayRequest)
	if err != nil {
		return err
	}
	defer done()
	if req.IDs, err = expandIDs(ctx, store, req.IDs); err != nil {
		return err
	}
	var pub deadletter.Publisher
	if !req.DryRun {
		p, closeNATS, err := replayPublisher(ctx, env, c)
		if err != nil {
			return err
		}
		defer closeNATS()
		pub = p
	}
	out := newResultWriter(env, c.json, []string{"ID", "RESULT"})
	tot, err := store.Replay(ctx, pub, req, func(r deadletter.ReplayResult) error {
		what := "replayed (generation " + strconv.Itoa(r.Generation) + ")"
		switch {
		case r.Error != "" && r.Replayed:
			what = "replayed, but: " + r.Error
		case r.Error != "":
			what = "not replayed: " + r.Error
		case r.DryRun:
			what = "would replay (generation " + strconv.Itoa(r.Generation) + ")"
		}
		return out.write(r, []string{r.ID, what})
	})
	verb := "replayed"
	if req.DryRun {
		verb = "would replay"
	}
	return out.finish(tot, verb, err)
}

// replayPublisher connects to NATS and checks that the job stream is
// there: a replay into nothing would fail entry by entry.
func replayPublisher(ctx context.Context, env *Env, c *dlqCmd) (deadletter.Publisher, func(), error) {
	url := resolve(env, natsSetting, c.natsURL)
	stream := resolve(env, streamSetting, "")
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	nc, js, err := conn.JetStream(cctx, url, "waq dlq replay")
	if err != nil {
		return nil, nil, err
	}
	if _, err := js.Stream(cctx, stream); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("stream %s on %s: %w (a worker creates it; WAQ_STREAM names another)", stream, url, err)
	}
	tracing, err := telemetry.SetupTracing(ctx, "waq-dlq", env.Getenv)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	closeFn := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
		_ = nc.Drain()
		nc.Close()
	}
	return queue.NewProducer(js, queue.ProducerOptions{TracerProvider: tracing.Provider}), closeFn, nil
}

func dlqPurge(ctx context.Context, env *Env, c *dlqCmd) error {
	req, store, done, err := openFor(ctx, env, c, c.p.PurgeRequest)
	if err != nil {
		return err
	}
	defer done()
	if req.IDs, err = expandIDs(ctx, store, req.IDs); err != nil {
		return err
	}
	out := newResultWriter(env, c.json, []string{"ID", "RESULT"})
	tot, err := store.Purge(ctx, req, func(r deadletter.PurgeResult) error {
		what := "purged"
		switch {
		case r.Error != "":
			what = "not purged: " + r.Error
		case r.DryRun:
			what = "would purge"
		}
		return out.write(r, []string{r.ID, what})
	})
	verb := "purged"
	if req.DryRun {
		verb = "would purge"
	}
	return out.finish(tot, verb, err)
}
