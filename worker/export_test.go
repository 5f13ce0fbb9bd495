package worker

// BodyTimeout lets the tests shorten the listeners' body deadline.
var BodyTimeout = &bodyTimeout

// WithPullGate makes the worker run gate at the start of its consume
// callback, before it takes each pulled message up.
func WithPullGate(o *Options, gate func()) { o.pullGate = gate }
