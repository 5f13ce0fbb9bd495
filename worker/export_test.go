package worker

// BodyTimeout lets the tests shorten the listeners' body deadline.
var BodyTimeout = &bodyTimeout
