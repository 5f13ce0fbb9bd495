package conn

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream connects as NATS does and returns the connection with its
// JetStream context; on an error nothing is left open. The caller closes
// the connection.
func JetStream(ctx context.Context, rawURL, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := NATS(ctx, rawURL, name, opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
