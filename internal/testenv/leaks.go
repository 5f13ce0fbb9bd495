package testenv

import "go.uber.org/goleak"

// ServerGoroutines are the goroutines that outlive a test by design, not
// the code under test's: the embedded NATS server's and the HTTP
// keep-alive pools'. Give them to goleak.VerifyTestMain.
func ServerGoroutines() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).Start.func1"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	}
}
