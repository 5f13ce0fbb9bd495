// Package worker is waq's delivery engine: it takes send jobs from the
// JetStream stream, sends them to the Graph API, and gives each exactly one
// outcome, sent or parked.
//
// # The path of a job
//
// A job arrives on the durable pull consumer that every worker process
// shares. The worker takes a slot (WAQ_CONCURRENCY of them per process) and:
//
//  1. decodes the body; a body that is not a valid job is parked as
//     "invalid" with its raw bytes, and acknowledged;
//  2. reads the job's record in the ledger (one Redis round trip): a job
//     already sent, or whose generation is already parked, is acknowledged
//     without a send. This is what makes a redelivery harmless;
//  3. parks the job as "expired" when its not_after has passed;
//  4. asks the gate whether the job's template or its number's quality
//     holds it back (a template paused or disabled, or for marketing a RED
//     template or a FLAGGED number, by Meta's account webhooks or a send
//     error). A held job is written to the hold set in Redis (the message,
//     subject, headers and body, under {prefix}:{held}:jobs, its look-again
//     time in the sorted set {prefix}:{held}) and then acknowledged, so that
//     it takes no place in the consumer's max ack pending while it waits;
//     every worker publishes due entries again (same body and headers,
//     Nats-Msg-Id ID~hHELDAT) and removes one only after the publish, so
//     the job comes back through this path (holdset.go). When Redis cannot
//     take it, and for marketing slowed to one a second, the message is
//     handed back to JetStream instead (NakWithDelay). A template rejected
//     or deleted, or a hold past WAQ_TEMPLATE_HOLD_MAX, parks the job as
//     "template";
//  5. asks the throughput gate whether its phone number and recipient may
//     send now (pacing, 130429 back-off, pair limits, app holds, pauses). If
//     not, the job waits for its slot on a timer, or is handed back to
//     JetStream with a delay (NakWithDelay): a wait never holds a slot;
//  6. sends it, and classifies a failure with the policy into one decision:
//     retry (record the attempt, NakWithDelay the backoff), throttle (tell
//     the gate, NakWithDelay), park (write the dead-letter entry, then mark
//     the ledger), or pause (the gate stops the number; the job goes back);
//  7. acknowledges only after the outcome is durably in Redis.
//
// # Guarantees
//
// Every acknowledged job has its outcome in Redis, or, held, its message
// in the hold set until it is published again. A job is sent twice only
// when a worker dies (or Redis stays down past the shutdown bound) between
// the API's answer and the ledger's write: the redelivered job finds no
// record and is sent again. Acks themselves may be lost; the ledger makes
// the redelivery harmless.
//
// A live worker that could not run in time (the jobs it pulled left in the
// client's buffer while every place was taken, a process starved or
// paused) sends nothing twice: a delivery whose send has not started five
// sixths of the ack wait after JetStream last heard of it is given up
// unsent, since JetStream may have handed it to another worker (lapse.go).
//
// When Redis or NATS is unreachable the worker stops taking new jobs,
// reports unready on /readyz, holds the outcomes it could not record (and
// tells JetStream it is still working on them), and resumes by itself.
//
// A job's generation is its replay count (the Waq-Replay header): a replay
// from the dead-letter store starts a new attempt count, and a delivery of
// an older generation than the ledger knows is acknowledged and dropped.
package worker
