package fakegraph

import "net/http"

// Protocols are what a simulator's HTTP server should speak: HTTP/1.1, and
// HTTP/2 without TLS (h2c, with prior knowledge) for a worker with
// WAQ_GRAPH_H2C, which then sends many messages over a few connections as it
// does to Meta over TLS.
func Protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}
