package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/waqhq/waq/queue"
)

// Bodies keeps the bodies of sent jobs on a JetStream stream (file storage,
// a max age of the resend window), where disk is cheap, instead of in Redis:
// a sent job's record keeps only the stream sequence of its body, and the
// body is read back only when a webhook reports a failure that must park the
// job or send it again. It is safe for concurrent use.
type Bodies struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
	batch   *batcher
}

// BodiesConfig names the stream of bodies; the zero value means the
// defaults.
type BodiesConfig struct {
	// Name defaults to "WAQ_BODIES".
	Name string
	// Subject defaults to "waq.body".
	Subject string
	// Replicas defaults to 1; use 3 in a cluster.
	Replicas int
	// MaxAge is how long a body is kept: the resend window. Defaults to 24h.
	MaxAge time.Duration
}

// bodyIDHeader carries the job id of a body in a message of one body, as
// written before bodies were batched (still read).
const bodyIDHeader = "Waq-Job-Id"

// EnsureBodies creates the stream of bodies or brings its settings up to
// date, and returns the store over it.
func EnsureBodies(ctx context.Context, js jetstream.JetStream, cfg BodiesConfig) (*Bodies, error) {
	if cfg.Name == "" {
		cfg.Name = "WAQ_BODIES"
	}
	if cfg.Subject == "" {
		cfg.Subject = "waq.body"
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	dup := 2 * time.Minute
	if dup > cfg.MaxAge {
		dup = cfg.MaxAge
	}
	// In a cluster just formed, or with workers starting together, the
	// request may go unanswered while the meta leader is elected, as the
	// job stream's does (queue.EnsureStream).
	s, err := queue.RetryUnanswered(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Name,
			Description: "waq: bodies of sent jobs, for failures reported by webhook",
			Subjects:    []string{cfg.Subject},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      cfg.MaxAge,
			Replicas:    cfg.Replicas,
			Duplicates:  dup,
			Discard:     jetstream.DiscardOld,
			AllowDirect: true,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	return &Bodies{js: js, stream: s, subject: cfg.Subject, batch: newBatcher(js.Conn().MaxPayload())}, nil
}

// keepBodies puts the bodies of recs on the stream and returns their
// sequences (0 where none is kept: no store, no resend window, or a publish
// that failed, which OnBodyError hears of). The bodies join those of other
// callers in batches (bodybatch.go): one message, and one ack, for all the
// jobs sent while the last batch was being stored.
func (l *Ledger) keepBodies(ctx context.Context, recs []SentRecord) []uint64 {
	seqs := make([]uint64, len(recs))
	if l.bodies == nil || l.resend <= 0 {
		return seqs
	}
	batches := make([]*bodyBatch, len(recs))
	var led []*bodyBatch
	for i, r := range recs {
		if len(r.Body) == 0 {
			continue
		}
		b, leads := l.bodies.batch.join(r.ID, r.Body)
		batches[i] = b
		if leads {
			led = append(led, b)
		}
	}
	for _, b := range led {
		l.bodies.flush(b)
	}
	// No timer of its own: a batch is done within 2 × bodyWait (flush).
	for i, b := range batches {
		if b == nil {
			continue
		}
		select {
		case <-b.done:
		case <-ctx.Done():
		}
		select {
		case <-b.done:
			if b.err != nil {
				l.onBody(fmt.Errorf("keep body of %s: %w", recs[i].ID, b.err))
				continue
			}
			seqs[i] = b.seq
		default:
			l.onBody(fmt.Errorf("keep body of %s: no ack: %w", recs[i].ID, ctx.Err()))
		}
	}
	return seqs
}

// get reads the body of job id at seq; nil when it is gone (past the max
// age) or the sequence holds another job's.
func (b *Bodies) get(ctx context.Context, id string, low uint64) ([]byte, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger body %s: %w", id, err)
	}
	// The record keeps the sequence's low 32 bits; the body is younger
	// than the stream's last 2^32 messages.
	last := info.State.LastSeq
	seq := last&^(1<<32-1) | low
	if seq > last && seq >= 1<<32 {
		seq -= 1 << 32
	}
	m, err := b.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger body %s: %w", id, err)
	}
	if m.Header.Get(bodyBatchHeader) != "" {
		return findBody(m.Data, id), nil
	}
	if m.Header.Get(bodyIDHeader) != id {
		return nil, nil
	}
	return m.Data, nil
}
