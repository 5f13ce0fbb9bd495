package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/worker"
)

const (
	kubeDir   = "kubernetes"
	natsConf  = "nats/nats.conf"
	redisConf = "redis/redis.conf"
)

// kubeObject is what every Kubernetes object has, and the fields of the
// kinds these manifests hold that the tests check.
type kubeObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`       // ConfigMap
	StringData map[string]string `yaml:"stringData"` // Secret
	Resources  []string          `yaml:"resources"`  // Kustomization
	file       string
}

type kubeDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int             `yaml:"terminationGracePeriodSeconds"`
				Containers                    []kubeContainer `yaml:"containers"`
				Volumes                       []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type kubeContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	StartupProbe   *kubeProbe `yaml:"startupProbe"`
	LivenessProbe  *kubeProbe `yaml:"livenessProbe"`
	ReadinessProbe *kubeProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type kubeProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
}

type kubeService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type kubeBudget struct {
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		MinAvailable   any `yaml:"minAvailable"`
	} `yaml:"spec"`
}

// kubeManifests parses every YAML file of deploy/kubernetes (several
// documents each, possibly) and returns the objects with their nodes.
func kubeManifests(t *testing.T) ([]*kubeObject, map[*kubeObject]*yaml.Node) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubeDir, err)
	}
	var objs []*kubeObject
	nodes := map[*kubeObject]*yaml.Node{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: document %d: %v", f, i+1, err)
			}
			o := &kubeObject{file: f}
			if err := n.Decode(o); err != nil {
				t.Fatalf("%s: document %d: %v", f, i+1, err)
			}
			if o.APIVersion == "" || o.Kind == "" || (o.Metadata.Name == "" && o.Kind != "Kustomization") {
				t.Fatalf("%s: document %d lacks apiVersion, kind or metadata.name", f, i+1)
			}
			objs = append(objs, o)
			nodes[o] = &n
		}
	}
	return objs, nodes
}

// kubeFind returns the one object of kind and name, decoding its node into
// into when given.
func kubeFind(t *testing.T, objs []*kubeObject, nodes map[*kubeObject]*yaml.Node, kind, name string, into any) *kubeObject {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && (name == "" || o.Metadata.Name == name) {
			if into != nil {
				if err := nodes[o].Decode(into); err != nil {
					t.Fatalf("%s: %s %s: %v", o.file, kind, o.Metadata.Name, err)
				}
			}
			return o
		}
	}
	t.Fatalf("no %s %q in %s", kind, name, kubeDir)
	return nil
}

// kubeWorker is the worker's deployment as the tests read it.
type kubeWorker struct {
	dep       kubeDeployment
	c         kubeContainer
	config    map[string]string // the ConfigMap the container's envFrom names
	secret    map[string]string // the example Secret
	numbers   *kubeObject       // the phone-number ConfigMap
	numbersAt string            // where the container sees the file
}

func kubeWorkerOf(t *testing.T) (*kubeWorker, []*kubeObject, map[*kubeObject]*yaml.Node) {
	t.Helper()
	objs, nodes := kubeManifests(t)
	w := &kubeWorker{}
	kubeFind(t, objs, nodes, "Deployment", "waq-worker", &w.dep)
	cs := w.dep.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the worker's pod has %d containers, want 1", len(cs))
	}
	w.c = cs[0]
	if !slices.Equal(w.c.Args, []string{"worker"}) {
		t.Errorf("container args %v, want [worker]", w.c.Args)
	}
	for _, ef := range w.c.EnvFrom {
		if ef.ConfigMapRef != nil {
			w.config = kubeFind(t, objs, nodes, "ConfigMap", ef.ConfigMapRef.Name, nil).Data
		}
		if ef.SecretRef != nil {
			t.Errorf("envFrom secretRef %s: name each secret variable in env instead, so that the test and a reader see them", ef.SecretRef.Name)
		}
	}
	if w.config == nil {
		t.Fatal("the worker takes no ConfigMap through envFrom")
	}
	w.secret = kubeFind(t, objs, nodes, "Secret", "waq-secrets", nil).StringData
	// The phone-number file: a ConfigMap volume, mounted where
	// WAQ_PHONE_NUMBERS_FILE points.
	file := w.config["WAQ_PHONE_NUMBERS_FILE"]
	for _, m := range w.c.VolumeMounts {
		if path.Dir(file) != path.Clean(m.MountPath) {
			continue
		}
		for _, v := range w.dep.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				w.numbers = kubeFind(t, objs, nodes, "ConfigMap", v.ConfigMap.Name, nil)
				w.numbersAt = file
				if !m.ReadOnly {
					t.Errorf("volume %s is mounted writable", m.Name)
				}
			}
		}
	}
	if w.numbers == nil || w.numbers.Data[path.Base(file)] == "" {
		t.Fatalf("WAQ_PHONE_NUMBERS_FILE=%s is not a key of a ConfigMap mounted at %s", file, path.Dir(file))
	}
	return w, objs, nodes
}

// env is the worker's environment as the pod would have it, secrets taken
// from the example Secret.
func (w *kubeWorker) env(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range w.config {
		env[k] = v
	}
	for _, e := range w.c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != "waq-secrets" {
				t.Errorf("env %s comes from Secret %s; secret.example.yaml describes waq-secrets", e.Name, ref.Name)
			}
			v, ok := w.secret[ref.Key]
			if !ok {
				t.Errorf("env %s: key %s is not in secret.example.yaml", e.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		default:
			t.Errorf("env %s: only values and secretKeyRef are expected", e.Name)
		}
	}
	return env
}

// tokenEnvs are the variables the phone-number file names for tokens.
func (w *kubeWorker) tokenEnvs(t *testing.T) []string {
	t.Helper()
	reg, err := numbers.Parse(w.numbersAt, []byte(w.numbers.Data[path.Base(w.numbersAt)]), func(string) string { return "token" })
	if err != nil {
		t.Fatalf("the phone-number file of %s: %v", w.numbers.file, err)
	}
	var out []string
	for _, n := range reg.Listed() {
		if !slices.Contains(out, n.TokenEnv) {
			out = append(out, n.TokenEnv)
		}
	}
	return out
}

// TestKubernetesManifests checks that the manifests name only settings the
// worker reads, that its configuration passes the worker's own validation,
// that each token the phone-number file names comes from a Secret, that the
// probes and the Service reach the port the worker listens on, that the
// grace period outlasts the shutdown bound, and that the selectors agree.
func TestKubernetesManifests(t *testing.T) {
	w, objs, nodes := kubeWorkerOf(t)
	env := w.env(t)
	settings := worker.SettingNames()
	tokens := w.tokenEnvs(t)
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case strings.HasPrefix(k, "WAQ_"):
			if !slices.Contains(settings, k) && !slices.Contains(tokens, k) {
				t.Errorf("%s is set, but the worker reads no such setting and the phone-number file names no such token", k)
			}
		case strings.HasPrefix(k, "OTEL_"), k == "GOMEMLIMIT", k == "GOMAXPROCS":
		default:
			t.Errorf("%s is set: neither a worker setting, an OTEL_ variable nor a Go runtime one", k)
		}
	}
	for _, tok := range tokens {
		if _, ok := env[tok]; !ok {
			t.Errorf("the phone-number file names token variable %s, which the pod does not set", tok)
		}
	}

	// The worker's own validation, with the pod's environment.
	numbersFile := filepath.Join(t.TempDir(), "phone-numbers.yaml")
	if err := os.WriteFile(numbersFile, []byte(w.numbers.Data[path.Base(w.numbersAt)]), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg worker.Config
	if err := cfg.FromEnv(func(k string) string {
		if k == "WAQ_PHONE_NUMBERS_FILE" {
			return numbersFile
		}
		return env[k]
	}); err != nil {
		t.Fatalf("the pod's settings: %v", err)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the pod's settings: %v", err)
	}
	if cfg.StreamReplicas != 3 {
		t.Errorf("WAQ_STREAM_REPLICAS=%d; a cluster keeps 3 (SPEC §2)", cfg.StreamReplicas)
	}
	if natsURLs := strings.Split(cfg.NATSURL, ","); len(natsURLs) != 3 {
		t.Errorf("WAQ_NATS_URL names %d servers, want the cluster's three", len(natsURLs))
	}

	// A stop within WAQ_SHUTDOWN_TIMEOUT, then the HTTP server and the
	// connections close: the grace period needs more, with room to spare.
	grace := time.Duration(w.dep.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if grace < cfg.ShutdownTimeout+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %s does not exceed WAQ_SHUTDOWN_TIMEOUT %s by 5s: SIGKILL would cut sends short", grace, cfg.ShutdownTimeout)
	}

	// Probes and ports.
	_, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	for _, p := range w.c.Ports {
		ports[p.Name] = p.ContainerPort
		ports[strconv.Itoa(p.ContainerPort)] = p.ContainerPort
	}
	if !slices.Contains(mapValues(ports), atoi(port)) {
		t.Errorf("WAQ_HTTP_ADDR %s: port %s is not a container port (%v)", cfg.HTTPAddr, port, w.c.Ports)
	}
	for _, pr := range []struct {
		name string
		p    *kubeProbe
		path string
	}{
		{"startupProbe", w.c.StartupProbe, "/healthz"},
		{"livenessProbe", w.c.LivenessProbe, "/healthz"},
		{"readinessProbe", w.c.ReadinessProbe, "/readyz"},
	} {
		switch {
		case pr.p == nil:
			t.Errorf("no %s", pr.name)
		case pr.p.HTTPGet.Path != pr.path:
			t.Errorf("%s: path %q, want %q", pr.name, pr.p.HTTPGet.Path, pr.path)
		case ports[fmt.Sprint(pr.p.HTTPGet.Port)] != atoi(port):
			t.Errorf("%s: port %v is not the worker's %s", pr.name, pr.p.HTTPGet.Port, port)
		}
	}
	for _, r := range []string{"cpu", "memory"} {
		if w.c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if w.c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}

	// Selectors: the Deployment's pods, the Service's and the budget's.
	pod := w.dep.Spec.Template.Metadata.Labels
	if !selects(w.dep.Spec.Selector.MatchLabels, pod) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", w.dep.Spec.Selector.MatchLabels, pod)
	}
	var pdb kubeBudget
	checkServices(t, objs, nodes, cfg, pod, ports)
	kubeFind(t, objs, nodes, "PodDisruptionBudget", "", &pdb)
	if !selects(pdb.Spec.Selector.MatchLabels, pod) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the worker's pods", pdb.Spec.Selector.MatchLabels)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget bounds nothing")
	}
	if w.dep.Spec.Replicas < 2 {
		t.Errorf("%d replicas: a drain would stop all sends", w.dep.Spec.Replicas)
	}

	// The kustomization applies every manifest but the Secret's template.
	k := kubeFind(t, objs, nodes, "Kustomization", "", nil)
	files, _ := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	var want []string
	for _, f := range files {
		b := filepath.Base(f)
		if b != "kustomization.yaml" && !strings.HasSuffix(b, ".example.yaml") {
			want = append(want, b)
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml applies %v, want %v", got, want)
	}
}

// checkServices: two Services, one per listener of the worker: waq on
// WAQ_HTTP_ADDR (metrics, admin API, console) and waq-webhook on
// WAQ_WEBHOOK_ADDR (the public /webhook); an Ingress, if the manifests
// hold one, routes to waq-webhook only.
func checkServices(t *testing.T, objs []*kubeObject, nodes map[*kubeObject]*yaml.Node, cfg worker.Config, pod map[string]string, ports map[string]int) {
	t.Helper()
	if cfg.WebhookAddr == "" {
		t.Fatal("WAQ_WEBHOOK_ADDR is not set: the public webhook would share the admin API's and the console's port")
	}
	var services []string
	for _, o := range objs {
		if o.Kind == "Service" {
			services = append(services, o.Metadata.Name)
		}
	}
	sort.Strings(services)
	if !slices.Equal(services, []string{"waq", "waq-webhook"}) {
		t.Errorf("Services %v, want [waq waq-webhook]", services)
	}
	for _, s := range []struct{ name, env, addr string }{{"waq", "WAQ_HTTP_ADDR", cfg.HTTPAddr}, {"waq-webhook", "WAQ_WEBHOOK_ADDR", cfg.WebhookAddr}} {
		_, port, err := net.SplitHostPort(s.addr)
		if err != nil {
			t.Fatalf("%s: %v", s.env, err)
		}
		if !slices.Contains(mapValues(ports), atoi(port)) {
			t.Errorf("%s %s: port %s is not a container port", s.env, s.addr, port)
		}
		var svc kubeService
		kubeFind(t, objs, nodes, "Service", s.name, &svc)
		if !selects(svc.Spec.Selector, pod) {
			t.Errorf("Service %s: selector %v does not select the worker's pods %v", s.name, svc.Spec.Selector, pod)
		}
		if len(svc.Spec.Ports) != 1 {
			t.Errorf("Service %s has %d ports, want the one of %s", s.name, len(svc.Spec.Ports), s.env)
		}
		for _, p := range svc.Spec.Ports {
			if ports[fmt.Sprint(p.TargetPort)] != atoi(port) {
				t.Errorf("Service %s port %s: target %v is not %s's port %s", s.name, p.Name, p.TargetPort, s.env, port)
			}
		}
	}
	for _, o := range objs {
		if o.Kind != "Ingress" {
			continue
		}
		var ing struct {
			Spec struct {
				Rules []struct {
					HTTP struct {
						Paths []struct {
							Path    string `yaml:"path"`
							Backend struct {
								Service struct {
									Name string `yaml:"name"`
								} `yaml:"service"`
							} `yaml:"backend"`
						} `yaml:"paths"`
					} `yaml:"http"`
				} `yaml:"rules"`
			} `yaml:"spec"`
		}
		if err := nodes[o].Decode(&ing); err != nil {
			t.Fatal(err)
		}
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if p.Backend.Service.Name != "waq-webhook" {
					t.Errorf("Ingress %s routes %s to Service %s: only waq-webhook is meant to be public", o.Metadata.Name, p.Path, p.Backend.Service.Name)
				}
			}
		}
	}
}

// TestKubernetesWorkerServesProbes runs a worker with the pod's settings
// (NATS and Redis of the test, one stream replica) and asks it for the
// paths the probes and the Service name: each is served.
func TestKubernetesWorkerServesProbes(t *testing.T) {
	w, _, _ := kubeWorkerOf(t)
	env := w.env(t)
	n := testenv.StartNATS(t)
	r := testenv.StartRedis(t)
	numbersFile := filepath.Join(t.TempDir(), "phone-numbers.yaml")
	if err := os.WriteFile(numbersFile, []byte(w.numbers.Data[path.Base(w.numbersAt)]), 0o600); err != nil {
		t.Fatal(err)
	}
	local := map[string]string{"WAQ_NATS_URL": n.URL, "WAQ_REDIS_URL": r.URL, "WAQ_REDIS_WAIT_REPLICAS": "0",
		"WAQ_STREAM_REPLICAS": "1", "WAQ_PHONE_NUMBERS_FILE": numbersFile, "WAQ_GRAPH_URL": "http://127.0.0.1:1",
		"WAQ_WEBHOOK_ADDR": "127.0.0.1:0"}
	getenv := func(k string) string {
		if v, ok := local[k]; ok {
			return v
		}
		return env[k]
	}
	var cfg worker.Config
	if err := cfg.FromEnv(getenv); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wk, err := worker.New(cfg, getenv, worker.Options{Listener: l, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
	base := "http://" + l.Addr().String()
	get := func(url string) (int, error) {
		res, err := http.Get(url)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	for _, p := range []*kubeProbe{w.c.StartupProbe, w.c.LivenessProbe, w.c.ReadinessProbe} {
		testenv.Eventually(t, 20*time.Second, func() error {
			code, err := get(base + p.HTTPGet.Path)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("GET %s: %d", p.HTTPGet.Path, code)
			}
			return nil
		})
	}
	// What the Services are for: metrics on waq; Meta's subscription check
	// of the webhook, with the Secret's verify token, on waq-webhook only.
	if code, err := get(base + "/metrics"); err != nil || code != http.StatusOK {
		t.Errorf("GET /metrics: %d %v", code, err)
	}
	hook := "http://" + wk.WebhookAddr()
	check := "/webhook?hub.mode=subscribe&hub.challenge=42&hub.verify_token=" + env["WAQ_WEBHOOK_VERIFY_TOKEN"]
	if code, err := get(hook + check); err != nil || code != http.StatusOK {
		t.Errorf("GET /webhook (subscription check) on the webhook's port: %d %v", code, err)
	}
	for _, u := range []string{base + check, hook + "/metrics", hook + "/admin/dlq", hook + "/readyz"} {
		if code, err := get(u); err != nil || code != http.StatusNotFound {
			t.Errorf("GET %s: %d %v, want 404", u, code, err)
		}
	}
}

// TestNATSConf parses deploy/nats/nats.conf with the NATS server's own
// config reader, as each of the three servers would (SERVER_NAME set), and
// checks the cluster and the durability SPEC §2 asks for.
func TestNATSConf(t *testing.T) {
	raw, err := os.ReadFile(natsConf)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for i := range 3 {
		name := fmt.Sprintf("nats-%d", i)
		t.Setenv("SERVER_NAME", name)
		opts, err := server.ProcessConfigFile(natsConf)
		if err != nil {
			t.Fatalf("%s as %s: %v", natsConf, name, err)
		}
		if opts.ServerName != name {
			t.Errorf("server_name %q, want %q from SERVER_NAME", opts.ServerName, name)
		}
		if !opts.JetStream || opts.StoreDir == "" {
			t.Errorf("JetStream %v, store_dir %q: want JetStream on, on disk", opts.JetStream, opts.StoreDir)
		}
		if !opts.SyncAlways {
			t.Error("sync_interval is not always: acknowledged writes can be lost when power fails (SPEC §2)")
		}
		if opts.Cluster.Name == "" || opts.Cluster.Port == 0 {
			t.Errorf("cluster name %q, port %d: want a named cluster with a route port", opts.Cluster.Name, opts.Cluster.Port)
		}
		hosts := map[string]bool{}
		for _, r := range opts.Routes {
			if r.Port() != strconv.Itoa(opts.Cluster.Port) {
				t.Errorf("route %s: port %s, the cluster listens on %d", r, r.Port(), opts.Cluster.Port)
			}
			hosts[r.Hostname()] = true
		}
		if len(opts.Routes) != 3 || len(hosts) != 3 {
			t.Errorf("%d routes to %d hosts, want the three servers", len(opts.Routes), len(hosts))
		}
		urls = append(urls, fmt.Sprintf("nats://%s.nats:%d", name, opts.Port))
	}
	if !strings.Contains(string(raw), "sync_interval: always") {
		t.Error("the file does not say sync_interval: always in so many words")
	}
	// The worker's WAQ_NATS_URL names the same three servers.
	w, _, _ := kubeWorkerOf(t)
	if got := strings.Split(w.config["WAQ_NATS_URL"], ","); !slices.Equal(got, urls) {
		t.Errorf("WAQ_NATS_URL %v, want the servers of %s: %v", got, natsConf, urls)
	}
}

// TestRedisConf reads deploy/redis/redis.conf for the settings waq's
// outcomes depend on, then starts the installed redis-server with it and
// asks the running server.
func TestRedisConf(t *testing.T) {
	raw, err := os.ReadFile(redisConf)
	if err != nil {
		t.Fatal(err)
	}
	directives := map[string]string{}
	var comment []string
	explained := false
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#"):
			comment = append(comment, line)
			continue
		case line == "":
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		if _, dup := directives[k]; dup && k != "save" {
			t.Errorf("%s is set twice", k)
		}
		directives[k] = strings.TrimSpace(v)
		if k == "appendfsync" {
			text := strings.Join(comment, " ")
			explained = strings.Contains(text, "always") && strings.Contains(text, "everysec")
		}
		comment = nil
	}
	for k, want := range map[string]string{"appendonly": "yes", "maxmemory-policy": "noeviction", "no-appendfsync-on-rewrite": "no"} {
		if directives[k] != want {
			t.Errorf("%s %q, want %q", k, directives[k], want)
		}
	}
	if f := directives["appendfsync"]; f != "always" && f != "everysec" {
		t.Errorf("appendfsync %q, want always or everysec", f)
	}
	if !explained {
		t.Error("the comment above appendfsync does not weigh always against everysec")
	}
	// Redis changes into dir as it reads the file, before the command line
	// could override it: the copy the test starts has the test's own.
	dir := t.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	local := strings.Replace(string(raw), "\ndir "+directives["dir"]+"\n", "\ndir "+dir+"\n", 1)
	if err := os.WriteFile(conf, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	r := testenv.StartRedisConfig(t, conf)
	c := r.Client(t)
	for k, want := range map[string]string{"appendonly": "yes", "appendfsync": directives["appendfsync"], "maxmemory-policy": "noeviction"} {
		got, err := c.ConfigGet(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[k] != want {
			t.Errorf("the running server has %s %q, want %q", k, got[k], want)
		}
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func mapValues(m map[string]int) []int {
	out := make([]int, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
