package worker

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

// Parts are the connections of a running worker that what is mounted
// beside it on its listener (the admin API, the console) shares, so that a
// process holds one Redis client and one NATS connection. The worker closes
// them when Run returns: nothing here needs closing.
type Parts struct {
	// Redis is the worker's Redis client.
	Redis redis.UniversalClient
	// DeadLetters is the worker's dead-letter store.
	DeadLetters *deadletter.Store
	// Producer publishes jobs on the worker's NATS connection.
	Producer *queue.Producer
	// Ledger is the worker's job records.
	Ledger *ledger.Ledger
	// HashRecipient is the recipient hash the worker's telemetry carries
	// (waq.recipient.hash), with the key shared by the workers of one Redis.
	HashRecipient func(number string) string
	// Logger is where the worker logs.
	Logger *slog.Logger
}

// OnConnect registers fn to run once Run has connected to NATS and Redis,
// before its listener serves: fn mounts (Handle) what uses the worker's
// connections. The context fn gets ends when the worker begins its
// graceful stop, or Run returns, whichever is first: work that lives as
// long as the worker ends with it. Call OnConnect before Run.
func (w *Worker) OnConnect(fn func(ctx context.Context, p Parts)) {
	w.onConnect = append(w.onConnect, fn)
}

// connected runs the OnConnect functions.
func (w *Worker) connected(ctx context.Context) {
	p := Parts{Redis: w.rdb, DeadLetters: w.dlq, Producer: w.producer, Ledger: w.ledger, HashRecipient: w.hasher.Hash, Logger: w.log}
	for _, fn := range w.onConnect {
		fn(ctx, p)
	}
}
