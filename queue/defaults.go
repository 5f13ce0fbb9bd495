package queue

// The names and address every part of waq agrees on when nothing is
// configured: the worker's defaults, the producer's, and the commands'
// (`waq send`, `waq dlq replay`, `waq doctor`) are these.
const (
	// DefaultStream is the job stream's name.
	DefaultStream = "WAQ_SEND"
	// DefaultConsumer is the durable pull consumer the workers share.
	DefaultConsumer = "waq-worker"
	// DefaultNATSURL is where NATS is looked for when no URL is given.
	DefaultNATSURL = "nats://127.0.0.1:4222"
)
