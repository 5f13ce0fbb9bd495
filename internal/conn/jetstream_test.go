package conn

import (
	"context"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
)

// TestJetStream: a good URL gives a connection whose JetStream answers; a
// malformed or unreachable one an error and no connection.
func TestJetStream(t *testing.T) {
	n := testenv.StartNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, js, err := JetStream(ctx, n.URL, "conn test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Errorf("jetstream: %v", err)
	}
	if got := n.Server.NumClients(); got != 1 {
		t.Errorf("%d connections, want 1", got)
	}
	nc.Close()
	// Port 1 has nobody listening: never a real server's port.
	for _, bad := range []string{"127.0.0.1:1", "http://127.0.0.1:1", "nats://127.0.0.1:1", "nats://127.0.0.1:notaport"} {
		bctx, bcancel := context.WithTimeout(context.Background(), 2*time.Second)
		nc, js, err := JetStream(bctx, bad, "conn test")
		bcancel()
		if err == nil || nc != nil || js != nil {
			t.Errorf("%q: connection %t, jetstream %t, error %v; want an error and nothing", bad, nc != nil, js != nil, err)
		}
		if nc != nil {
			nc.Close()
		}
	}
}
