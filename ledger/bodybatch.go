package ledger

// Bodies in batches: a body published on its own, with a message id for the
// duplicate window, cost NATS about as much as the job's own delivery and
// ack, and the worker a publish and an ack to wait for. Sent jobs' bodies
// now go in batches, one message of many bodies: a batch collects the
// bodies that arrive while the batches before it are being stored (at most
// bodiesInFlight at once), so a lone job is stored at once and a busy worker
// stores tens of bodies per message. A record keeps its batch's sequence, and
// a read finds the job's body among the batch's by its id.

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// bodyBatchHeader marks a message of batched bodies and says how many
	// it holds. Its data is, for each body: the job id's length (uvarint),
	// the id, the body's length (uvarint), the body.
	bodyBatchHeader = "Waq-Bodies"
	// bodyBatchBytes bounds a batch's data (a body alone may be larger: it
	// goes in a batch of its own).
	bodyBatchBytes = 256 << 10
	// bodiesInFlight is how many batches are published and not yet
	// acknowledged at once.
	bodiesInFlight = 2
	// bodyWait bounds the wait for a batch's turn, and then for its ack.
	bodyWait = 5 * time.Second
)

// bodyBatch is one message of bodies; done is closed once it is stored
// (seq) or could not be (err).
type bodyBatch struct {
	data []byte
	n    int
	done chan struct{}
	seq  uint64
	err  error
}

// batcher collects bodies into the open batch.
type batcher struct {
	max   int
	slots chan struct{}
	mu    sync.Mutex
	open  *bodyBatch
}

func newBatcher(maxPayload int64) *batcher {
	n := bodyBatchBytes
	if maxPayload > 0 && int64(n) > maxPayload/2 {
		n = int(maxPayload / 2)
	}
	return &batcher{max: n, slots: make(chan struct{}, bodiesInFlight)}
}

// join adds a body to the open batch; leads is true when it opened the
// batch, whose flush is then the caller's.
func (q *batcher) join(id string, body []byte) (b *bodyBatch, leads bool) {
	size := 2*binary.MaxVarintLen32 + len(id) + len(body)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.open != nil && len(q.open.data)+size > q.max {
		q.open = nil // full: its leader publishes it as it is
	}
	if q.open == nil {
		q.open = &bodyBatch{done: make(chan struct{}), data: make([]byte, 0, min(q.max, max(size, 16<<10)))}
		leads = true
	}
	b = q.open
	b.data = binary.AppendUvarint(b.data, uint64(len(id)))
	b.data = append(b.data, id...)
	b.data = binary.AppendUvarint(b.data, uint64(len(body)))
	b.data = append(b.data, body...)
	b.n++
	return b, leads
}

// seal closes b to more bodies.
func (q *batcher) seal(b *bodyBatch) {
	q.mu.Lock()
	if q.open == b {
		q.open = nil
	}
	q.mu.Unlock()
}

// flush waits for b's turn (the batches before it stored), while b
// collects more bodies, then publishes it and waits for its ack. It does not
// take the leader's context: the batch holds other callers' bodies, and
// both waits are bounded.
func (s *Bodies) flush(b *bodyBatch) {
	defer close(b.done)
	turn := time.NewTimer(bodyWait)
	defer turn.Stop()
	select {
	case s.batch.slots <- struct{}{}:
	case <-turn.C:
		s.batch.seal(b)
		b.err = errors.New("the batches before it were not stored in time")
		return
	}
	defer func() { <-s.batch.slots }()
	s.batch.seal(b)
	m := nats.NewMsg(s.subject)
	m.Header.Set(bodyBatchHeader, strconv.Itoa(b.n))
	m.Data = b.data
	ctx, cancel := context.WithTimeout(context.Background(), bodyWait)
	defer cancel()
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		b.err = err
		return
	}
	b.seq = ack.Sequence
}

// findBody is job id's body in a batch's data; nil when it holds none (or
// the data is cut).
func findBody(data []byte, id string) []byte {
	var found []byte
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return nil, false
		}
		v := data[k : k+int(n)]
		data = data[k+int(n):]
		return v, true
	}
	for len(data) > 0 {
		fid, ok1 := next()
		body, ok2 := next()
		if !ok1 || !ok2 {
			return nil
		}
		if string(fid) == id {
			found = body
		}
	}
	return found
}
