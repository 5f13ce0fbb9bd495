package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/waqhq/waq/internal/httpsrv"
	"github.com/waqhq/waq/throttle"
	"github.com/waqhq/waq/webhook"
)

// bodyTimeout bounds reading a request body on the worker's listeners
// (httpsrv.BodyDeadline): a body trickled a byte at a time is cut off
// after it. Tests shorten it.
var bodyTimeout = 30 * time.Second

// serveHTTP starts the listeners. The main one (WAQ_HTTP_ADDR) serves
// /healthz, /readyz, /metrics, what was mounted with Handle (the admin API,
// the console) and, unless WAQ_WEBHOOK_ADDR gives it a listener of its own,
// /webhook. The webhook's own listener serves /webhook (when the app secret
// turns it on) and /healthz only: it is the one address meant to be
// reachable from the internet.
func (w *Worker) serveHTTP() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", alive)
	mux.HandleFunc("GET /readyz", w.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{}))
	if w.cfg.Pprof {
		// Profiles say where a worker's time goes; off by default, as they
		// cost CPU while taken and show the code's internals.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	var hook http.Handler
	if w.cfg.AppSecret != "" && w.cfg.WebhookVerifyToken != "" {
		hook = &webhook.Handler{
			AppSecret: w.cfg.AppSecret, VerifyToken: w.cfg.WebhookVerifyToken, JS: w.js, Log: w.log,
			Count:  func(result string, n int) { w.metrics.WebhookPosts.WithLabelValues(result).Add(float64(n)) },
			System: func(typ string) { w.metrics.SystemMessages.WithLabelValues(typ).Inc() },
		}
		if w.cfg.WebhookAddr == "" {
			mux.Handle("/webhook", hook)
		}
	}
	for _, r := range w.handlers {
		mux.Handle(r.pattern, r.handler)
	}
	if w.listener == nil {
		l, err := net.Listen("tcp", w.cfg.HTTPAddr)
		if err != nil {
			return &ConfigError{Setting: "WAQ_HTTP_ADDR", Problem: err.Error()}
		}
		w.listener = l
	}
	if w.cfg.WebhookAddr != "" {
		l, err := net.Listen("tcp", w.cfg.WebhookAddr)
		if err != nil {
			_ = w.listener.Close()
			return &ConfigError{Setting: "WAQ_WEBHOOK_ADDR", Problem: err.Error()}
		}
		// Without the app secret the webhook is off: 404, but the
		// listener is there for a load balancer's health check.
		hm := http.NewServeMux()
		hm.HandleFunc("GET /healthz", alive)
		if hook != nil {
			hm.Handle("/webhook", hook)
		}
		w.webhookListener = l
		w.webhookServer = w.serve(l, hm)
	}
	w.server = w.serve(w.listener, mux)
	return nil
}

// serve starts a server of h on l, with the body deadline, logging where
// the worker logs (Go's own messages, such as a handler's panic, too).
func (w *Worker) serve(l net.Listener, h http.Handler) *http.Server {
	srv := httpsrv.New(h, httpsrv.Timeouts{Body: bodyTimeout}, slog.NewLogLogger(w.log.Handler(), slog.LevelWarn))
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("http server stopped", "addr", l.Addr().String(), "error", err)
		}
	}()
	return srv
}

func alive(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	fmt.Fprintln(rw, `{"status":"alive"}`)
}

func (w *Worker) stopHTTP() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if w.webhookServer != nil {
		_ = w.webhookServer.Shutdown(ctx)
	}
	_ = w.server.Shutdown(ctx)
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Status is "ready", "degraded" (ready, but what Degraded lists fails:
	// the Graph API answers no send) or "unready".
	Status    string           `json:"status"`
	Down      []downDep        `json:"down"`
	Degraded  []downDep        `json:"degraded"`
	Paused    []throttle.State `json:"paused"`
	Throttled []throttle.State `json:"throttled"`
	// Numbers is the pace of each known number: its allowed rate, where
	// that comes from (the file's mps, the throughput level read from the
	// Graph API, or the default) and its rate now.
	Numbers []throttle.Pace `json:"numbers"`
	// Templates are the templates a webhook or a send found not sendable
	// (paused, disabled, rejected, deleted, RED), with the reason; empty
	// when all is well. NumberQuality is the business numbers Meta
	// flagged. Neither makes the worker unready: other jobs still go.
	Templates     []throttle.TemplateState `json:"templates"`
	NumberQuality []throttle.NumberQuality `json:"number_quality"`
}

// readiness is ready when NATS and Redis answer and at least one number can
// send.
func (w *Worker) readiness() Readiness {
	r := Readiness{Down: w.health.snapshot()}
	if !w.nc.IsConnected() && len(r.Down) == 0 {
		r.Down = append(r.Down, downDep{Name: "nats", Error: w.nc.Status().String()})
	}
	gs := throttle.Status{}
	if w.gate != nil {
		gs = w.gate.Status()
	}
	r.Paused, r.Throttled, r.Numbers = gs.Paused, gs.Throttled, gs.Numbers
	if r.Paused == nil {
		r.Paused = []throttle.State{}
	}
	if r.Throttled == nil {
		r.Throttled = []throttle.State{}
	}
	if r.Numbers == nil {
		r.Numbers = []throttle.Pace{}
	}
	r.Templates, r.NumberQuality = []throttle.TemplateState{}, []throttle.NumberQuality{}
	if w.gate != nil {
		r.Templates, r.NumberQuality = throttle.Unhealthy(w.gate.Templates())
	}
	r.Ready = len(r.Down) == 0 && !gs.AllPaused && w.ready.Load()
	// A failing Graph API leaves the worker ready: it still takes webhooks
	// and retries its jobs, and every worker would be failing alike.
	r.Degraded = []downDep{}
	if g := w.graphWatch.snapshot(); g.Failing {
		r.Degraded = append(r.Degraded, downDep{Name: graphAPI,
			Error: fmt.Sprintf("%d sends in a row got no usable answer since %s, the last: %s", g.InRow, g.Since.UTC().Format(time.RFC3339), g.Last)})
	}
	switch {
	case !r.Ready:
		r.Status = "unready"
	case len(r.Degraded) > 0:
		r.Status = "degraded"
	default:
		r.Status = "ready"
	}
	return r
}

func (w *Worker) readyz(rw http.ResponseWriter, _ *http.Request) {
	r := w.readiness()
	rw.Header().Set("Content-Type", "application/json")
	if !r.Ready {
		rw.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(rw).Encode(r)
}
