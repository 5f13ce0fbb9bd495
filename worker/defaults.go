package worker

// Defaults the commands beside the worker share with it: its Redis
// settings (`waq dlq`, `waq job` and `waq doctor` find what it writes when
// nothing is configured) and the name its spans carry.
const (
	// DefaultRedisURL is where Redis is looked for when no URL is given.
	DefaultRedisURL = "redis://127.0.0.1:6379/0"
	// DefaultKeyPrefix starts every Redis key the worker writes.
	DefaultKeyPrefix = "waq"
	// ServiceName is the OpenTelemetry service.name of a worker's spans.
	ServiceName = "waq-worker"
)
