package fakegraph

// Config.OnSend is how a load generator (`waq bench`) learns when each job
// reached the Graph API without polling the control API: it is called on the
// request's goroutine after the answer was written and counted, with the
// send as the sends log keeps it. Send.Time is when the request arrived
// (before the scenario's latency), so "publish → call" latencies are
// measured up to the moment Meta would have seen the request. The callback
// must be quick and must not block: it runs on the hot path of every send.
