package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// serveHTTP starts the listener: /healthz, /readyz, /metrics and whatever
// was mounted with Handle.
func (w *Worker) serveHTTP() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(rw, `{"status":"alive"}`)
	})
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
	if w.cfg.AppSecret != "" && w.cfg.WebhookVerifyToken != "" {
		mux.Handle("/webhook", &webhook.Handler{
			AppSecret: w.cfg.AppSecret, VerifyToken: w.cfg.WebhookVerifyToken, JS: w.js, Log: w.log,
			Count: func(result string, n int) { w.metrics.WebhookPosts.WithLabelValues(result).Add(float64(n)) },
		})
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
	w.server = httpsrv.New(mux, httpsrv.Timeouts{Body: bodyTimeout}, nil)
	go func() {
		if err := w.server.Serve(w.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

func (w *Worker) stopHTTP() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.server.Shutdown(ctx)
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready     bool             `json:"ready"`
	Down      []downDep        `json:"down"`
	Paused    []throttle.State `json:"paused"`
	Throttled []throttle.State `json:"throttled"`
	// Numbers is the pace of each known number: its allowed rate, where
	// that comes from (the file's mps, the throughput level read from the
	// Graph API, or the default) and its rate now.
	Numbers []throttle.Pace `json:"numbers"`
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
	r.Ready = len(r.Down) == 0 && !gs.AllPaused && w.ready.Load()
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
