package ledger_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// startBodies is a store of bodies on an embedded NATS server of the test's
// own.
func startBodies(t *testing.T, cfg ledger.BodiesConfig) *ledger.Bodies {
	t.Helper()
	b, _ := startBodiesJS(t, cfg)
	return b
}

// startBodiesJS is startBodies with the JetStream context it stores on.
func startBodiesJS(t *testing.T, cfg ledger.BodiesConfig) (*ledger.Bodies, jetstream.JetStream) {
	t.Helper()
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	b, err := ledger.EnsureBodies(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, js
}
