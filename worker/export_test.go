package worker

// BodyTimeout lets the tests shorten the listeners' body deadline.
var BodyTimeout = &bodyTimeout

// WithStall makes the worker run stall at the start of its consume
// callback (stage "pulled"), before it takes each pulled message up, and
// before a job waits for its send slot (stage "waiting").
func WithStall(o *Options, stall func(stage string)) { o.stall = stall }

// RoundTripsAlonePast lets the tests run every send's round trip on a
// goroutine of its own (0), as past the pool's size.
var RoundTripsAlonePast = &roundTripsAlonePast
