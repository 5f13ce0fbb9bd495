package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
)

// TestTrickledBodyIsCut: a client that announces a large body and sends it
// a byte at a time does not hold the public /webhook (unauthenticated until
// its signature is checked) for longer than the body deadline.
func TestTrickledBodyIsCut(t *testing.T) {
	e := setup(t)
	cfg := e.config()
	cfg.AppSecret, cfg.WebhookVerifyToken = appSecret, "verify-token"
	r := e.start(t, cfg)
	addr := strings.TrimPrefix(r.url, "http://")
	if took := testenv.Trickle(t, addr, "POST", "/webhook", 100*time.Millisecond, 10*time.Second); took > 4*time.Second {
		t.Errorf("a trickled body held /webhook for %v (deadline 1s)", took)
	}
}
