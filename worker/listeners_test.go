package worker_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/worker"
)

// fetch answers a GET: its status and body.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

const subscribe = "/webhook?hub.mode=subscribe&hub.challenge=4242&hub.verify_token=verify-token"

// TestWebhookOwnListener: with WAQ_WEBHOOK_ADDR the public webhook is on
// its own listener, which serves /webhook and /healthz and nothing of the
// operator's (metrics, readiness, admin, profiles); the main listener no
// longer serves /webhook. A trickled body is cut off there too.
func TestWebhookOwnListener(t *testing.T) {
	e := setup(t)
	cfg := e.config()
	cfg.AppSecret, cfg.WebhookVerifyToken = appSecret, "verify-token"
	cfg.WebhookAddr = "127.0.0.1:0"
	cfg.Pprof = true
	r := e.start(t, cfg)
	hookAddr := r.w.WebhookAddr()
	if hookAddr == "" || hookAddr == r.w.Addr() {
		t.Fatalf("webhook address %q, main %q", hookAddr, r.w.Addr())
	}
	hook := "http://" + hookAddr
	if code, body := fetch(t, hook+subscribe); code != http.StatusOK || body != "4242" {
		t.Errorf("subscription check on the webhook's listener: %d %q", code, body)
	}
	if code, _ := fetch(t, hook+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz on the webhook's listener: %d", code)
	}
	for _, p := range []string{"/metrics", "/readyz", "/admin/dlq", "/admin/ui/", "/debug/pprof/", "/"} {
		if code, _ := fetch(t, hook+p); code != http.StatusNotFound {
			t.Errorf("GET %s on the webhook's listener: %d, want 404", p, code)
		}
	}
	if code, _ := fetch(t, r.url+subscribe); code != http.StatusNotFound {
		t.Errorf("GET /webhook on the main listener with WAQ_WEBHOOK_ADDR set: %d, want 404", code)
	}
	for _, p := range []string{"/metrics", "/readyz", "/healthz", "/debug/pprof/"} {
		if code, _ := fetch(t, r.url+p); code != http.StatusOK {
			t.Errorf("GET %s on the main listener: %d", p, code)
		}
	}
	if took := testenv.Trickle(t, hookAddr, "POST", "/webhook", 100*time.Millisecond, 10*time.Second); took > 4*time.Second {
		t.Errorf("a trickled body held the webhook's listener for %v (deadline 1s)", took)
	}
}

// TestWebhookListenerWithoutSecret: WAQ_WEBHOOK_ADDR without the app
// secret opens the listener for a load balancer's health check; /webhook
// is off (404) there and on the main listener.
func TestWebhookListenerWithoutSecret(t *testing.T) {
	e := setup(t)
	cfg := e.config()
	cfg.WebhookAddr = "127.0.0.1:0"
	r := e.start(t, cfg)
	hook := "http://" + r.w.WebhookAddr()
	if code, _ := fetch(t, hook+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz on the webhook's listener: %d", code)
	}
	for _, u := range []string{hook, r.url} {
		if code, _ := fetch(t, u+subscribe); code != http.StatusNotFound {
			t.Errorf("GET %s/webhook without the app secret: %d, want 404", u, code)
		}
	}
}

// TestWebhookOnMainByDefault: without WAQ_WEBHOOK_ADDR, /webhook stays on
// the main listener, as before the setting existed.
func TestWebhookOnMainByDefault(t *testing.T) {
	e := setup(t)
	cfg := e.config()
	cfg.AppSecret, cfg.WebhookVerifyToken = appSecret, "verify-token"
	r := e.start(t, cfg)
	if a := r.w.WebhookAddr(); a != "" {
		t.Errorf("WebhookAddr %q without WAQ_WEBHOOK_ADDR", a)
	}
	if code, body := fetch(t, r.url+subscribe); code != http.StatusOK || body != "4242" {
		t.Errorf("subscription check on the main listener: %d %q", code, body)
	}
}

// TestConfigWebhookAddr: bad values of WAQ_WEBHOOK_ADDR are one error
// naming it.
func TestConfigWebhookAddr(t *testing.T) {
	for _, tt := range []struct {
		http, hook string
		secret     bool
		want       string // "" means valid
	}{
		{":8080", ":8081", true, ""},
		{"127.0.0.1:8080", "10.0.0.1:8080", true, ""},
		{"127.0.0.1:0", "127.0.0.1:0", true, ""},
		{":8080", "", false, ""},
		{":8080", "8081", true, `WAQ_WEBHOOK_ADDR: "8081" is not host:port`},
		{":8080", "localhost", true, "is not host:port"},
		{":8080", ":8080", true, "WAQ_HTTP_ADDR's port"},
		{"127.0.0.1:8080", ":8080", true, "WAQ_HTTP_ADDR's port"},
		{":8080", "0.0.0.0:8080", true, "WAQ_HTTP_ADDR's port"},
		{":8080", ":8081", false, ""},
	} {
		vars := map[string]string{"WAQ_ACCESS_TOKEN": "t", "WAQ_HTTP_ADDR": tt.http, "WAQ_WEBHOOK_ADDR": tt.hook}
		if tt.secret {
			vars["WAQ_APP_SECRET"], vars["WAQ_WEBHOOK_VERIFY_TOKEN"] = "s", "v"
		}
		checkConfigError(t, fmt.Sprintf("http %q webhook %q", tt.http, tt.hook), configError(worker.Config{}, vars), tt.want)
	}
}
