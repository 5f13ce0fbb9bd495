package worker

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
)

// Config is the worker's configuration. Its zero value, after
// ApplyDefaults, is a worker for a local NATS and Redis against Meta's
// Graph API; every field has an environment variable and a flag (SPEC §6).
type Config struct {
	// NATSURL defaults to nats://127.0.0.1:4222.
	NATSURL string
	// RedisURL defaults to redis://127.0.0.1:6379/0; redis-sentinel:// and
	// redis-cluster:// name a Sentinel-managed primary and a Redis Cluster
	// (conn.ParseRedisURL).
	RedisURL string
	// RedisWaitReplicas is how many Redis replicas must acknowledge an
	// outcome (sent record, dead-letter entry) before its job is
	// acknowledged (Redis WAIT, at most 1s per write). Defaults to 0: the
	// primary's answer suffices, and a failover can lose the last outcomes.
	// Not supported with redis-cluster://.
	RedisWaitReplicas int
	// GraphURL defaults to https://graph.facebook.com.
	GraphURL string
	// GraphVersion defaults to graph.DefaultVersion.
	GraphVersion string
	// GraphH2C speaks HTTP/2 without TLS to an http:// WAQ_GRAPH_URL (a
	// stand-in such as waq fakegraph). Off by default.
	GraphH2C bool
	// AccessToken is the token of numbers the phone-number file does not
	// give one for. Required unless the file gives every token.
	AccessToken string
	// PolicyFile overrides the default policy table; "" keeps it.
	PolicyFile string
	// HTTPAddr serves /metrics, /healthz, /readyz, /admin/ (the admin API
	// and the console) and, unless WebhookAddr is set, /webhook. Defaults to
	// ":8080".
	HTTPAddr string
	// WebhookAddr, when set, serves the public /webhook (and /healthz) on a
	// listener of its own, and HTTPAddr no longer serves it: the one
	// address to expose to Meta. Without AppSecret the listener still
	// answers /healthz (a load balancer's check), and /webhook is 404.
	// Defaults to "": /webhook on HTTPAddr.
	WebhookAddr string
	// Concurrency is the sends in flight in this process. Defaults to 128.
	Concurrency int
	// AdminToken turns on the admin API; "" leaves it off.
	AdminToken string
	// DLQRetention is how long dead-letter entries are kept. Defaults to 720h.
	DLQRetention time.Duration
	// SentRetention is how long a job's record (sent or not) is kept for
	// de-duplication and webhook matching. Defaults to 168h.
	SentRetention time.Duration
	// Stream defaults to "WAQ_SEND"; StreamReplicas to 1.
	Stream         string
	StreamReplicas int
	// PhoneNumbersFile lists the business numbers; "" serves every number
	// with AccessToken at 80 messages per second.
	PhoneNumbersFile string
	// AppSecret and WebhookVerifyToken turn on /webhook.
	AppSecret          string
	WebhookVerifyToken string
	// LogFormat is "json" (the default) or "text"; LogLevel "info" by default.
	LogFormat string
	LogLevel  string
	// ShutdownTimeout bounds a graceful stop. Defaults to 25s.
	ShutdownTimeout time.Duration
	// GraphTimeout bounds one Graph API call. Defaults to 15s.
	GraphTimeout time.Duration
	// AckWait is how long a job may stay unacknowledged before JetStream
	// gives it to another worker. Defaults to 60s.
	AckWait time.Duration
	// MaxAckPending bounds jobs delivered and not yet acknowledged (retries
	// waiting included) across all workers. Defaults to 20000.
	MaxAckPending int
	// KeyPrefix prefixes every Redis key. Defaults to "waq".
	KeyPrefix string
	// PauseParkAfter is how long jobs wait for a paused number before they
	// are parked as "account". Defaults to 1h.
	PauseParkAfter time.Duration
	// PauseProbe is the first wait before a paused number is probed; it
	// doubles up to 5m while the probe fails. Defaults to 15s.
	PauseProbe time.Duration
	// LevelEvery is how often each number's throughput level is read again
	// from the Graph API (a number Meta upgrades is paced at its new rate
	// from the next read). Defaults to 5m.
	LevelEvery time.Duration
	// TemplateHoldMax is how long jobs are held for a paused or disabled
	// template (or a low quality that holds marketing) before they are
	// parked. Defaults to 24h.
	TemplateHoldMax time.Duration
	// HoldRecheck is how often a held job looks again. Defaults to 1m.
	HoldRecheck time.Duration
	// TemplateRetry is how long a template a send found paused (132015,
	// 132016) is held before one job tries it. Defaults to 15m.
	TemplateRetry time.Duration
	// LowQualityMarketing is what a RED template or a FLAGGED number does
	// to marketing sends: hold (the default), slow or send.
	LowQualityMarketing string
	// EventsStream is the stream of status webhook events. Defaults to
	// "WAQ_EVENTS".
	EventsStream string
	// ResendWindow is how long a sent job's body is kept, so that a failure
	// reported later by webhook can park it with the job or send it again.
	// Defaults to 24h.
	ResendWindow time.Duration
	// BodiesStream is the JetStream stream that keeps sent jobs' bodies for
	// the resend window (file storage, max age = ResendWindow). Defaults to
	// "WAQ_BODIES".
	BodiesStream string
	// LedgerBuckets is the bucket count of the sent index's first window
	// (later windows size themselves); set it to a quarter of the retention's
	// sends divided by 64 when a new deployment starts at volume. Defaults
	// to 256.
	LedgerBuckets int
	// Pprof serves Go's profiles under /debug/pprof/ on the listener. Off by
	// default.
	Pprof bool
	// TraceURL is a link template for a trace in the tracing UI, with
	// {trace_id}; used by the console.
	TraceURL string
}

// setting ties a field to its variable and flag.
type setting struct {
	env, flag, usage string
	str              *string
	num              *int
	dur              *time.Duration
	boolean          *bool
	secret           bool
}

func (c *Config) settings() []setting {
	return []setting{
		{env: "WAQ_NATS_URL", flag: "nats-url", usage: "NATS server URL", str: &c.NATSURL},
		{env: "WAQ_REDIS_URL", flag: "redis-url", usage: "Redis URL: redis://, rediss://, redis-sentinel://...?master=NAME or redis-cluster://", str: &c.RedisURL},
		{env: "WAQ_REDIS_WAIT_REPLICAS", flag: "redis-wait-replicas", usage: "Redis replicas that must acknowledge an outcome before its job is acknowledged", num: &c.RedisWaitReplicas},
		{env: "WAQ_GRAPH_URL", flag: "graph-url", usage: "Graph API base URL", str: &c.GraphURL},
		{env: "WAQ_GRAPH_VERSION", flag: "graph-version", usage: "Graph API version", str: &c.GraphVersion},
		{env: "WAQ_GRAPH_H2C", flag: "graph-h2c", usage: "HTTP/2 without TLS to an http:// Graph URL (the simulator)", boolean: &c.GraphH2C},
		{env: "WAQ_ACCESS_TOKEN", flag: "access-token", usage: "access token (prefer the variable: flags show in ps)", str: &c.AccessToken, secret: true},
		{env: "WAQ_POLICY_FILE", flag: "policy-file", usage: "policy file (YAML)", str: &c.PolicyFile},
		{env: "WAQ_HTTP_ADDR", flag: "http-addr", usage: "listen address for /metrics, /healthz, /readyz, /admin/ and, without --webhook-addr, /webhook", str: &c.HTTPAddr},
		{env: "WAQ_WEBHOOK_ADDR", flag: "webhook-addr", usage: "listen address of the public /webhook (and /healthz) alone; empty: /webhook on --http-addr", str: &c.WebhookAddr},
		{env: "WAQ_CONCURRENCY", flag: "concurrency", usage: "sends in flight per process", num: &c.Concurrency},
		{env: "WAQ_ADMIN_TOKEN", flag: "admin-token", usage: "bearer token of the admin API (off when empty)", str: &c.AdminToken, secret: true},
		{env: "WAQ_DLQ_RETENTION", flag: "dlq-retention", usage: "how long dead-letter entries are kept", dur: &c.DLQRetention},
		{env: "WAQ_SENT_RETENTION", flag: "sent-retention", usage: "how long job records are kept for de-duplication and webhooks", dur: &c.SentRetention},
		{env: "WAQ_STREAM", flag: "stream", usage: "JetStream stream name", str: &c.Stream},
		{env: "WAQ_STREAM_REPLICAS", flag: "stream-replicas", usage: "stream replicas (3 in a cluster)", num: &c.StreamReplicas},
		{env: "WAQ_PHONE_NUMBERS_FILE", flag: "phone-numbers-file", usage: "phone-number file (YAML)", str: &c.PhoneNumbersFile},
		{env: "WAQ_APP_SECRET", flag: "app-secret", usage: "Meta app secret for webhook signatures", str: &c.AppSecret, secret: true},
		{env: "WAQ_WEBHOOK_VERIFY_TOKEN", flag: "webhook-verify-token", usage: "webhook subscription verify token", str: &c.WebhookVerifyToken, secret: true},
		{env: "WAQ_LOG_FORMAT", flag: "log-format", usage: "json or text", str: &c.LogFormat},
		{env: "WAQ_LOG_LEVEL", flag: "log-level", usage: "debug, info, warn or error", str: &c.LogLevel},
		{env: "WAQ_SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", usage: "bound of a graceful stop", dur: &c.ShutdownTimeout},
		{env: "WAQ_GRAPH_TIMEOUT", flag: "graph-timeout", usage: "bound of one Graph API call", dur: &c.GraphTimeout},
		{env: "WAQ_ACK_WAIT", flag: "ack-wait", usage: "JetStream ack wait of the consumer", dur: &c.AckWait},
		{env: "WAQ_MAX_ACK_PENDING", flag: "max-ack-pending", usage: "jobs delivered and unacknowledged, retries included", num: &c.MaxAckPending},
		{env: "WAQ_KEY_PREFIX", flag: "key-prefix", usage: "prefix of Redis keys", str: &c.KeyPrefix},
		{env: "WAQ_PAUSE_PARK_AFTER", flag: "pause-park-after", usage: "how long jobs wait for a paused number before they are parked as account", dur: &c.PauseParkAfter},
		{env: "WAQ_PAUSE_PROBE_INTERVAL", flag: "pause-probe-interval", usage: "first wait before a paused number is probed", dur: &c.PauseProbe},
		{env: "WAQ_THROUGHPUT_LEVEL_INTERVAL", flag: "throughput-level-interval", usage: "how often each number's throughput level is read again from the Graph API", dur: &c.LevelEvery},
		{env: "WAQ_TEMPLATE_HOLD_MAX", flag: "template-hold-max", usage: "how long jobs are held for a paused template or a low quality before they are parked", dur: &c.TemplateHoldMax},
		{env: "WAQ_HOLD_RECHECK", flag: "hold-recheck", usage: "how often a job held for its template or quality looks again", dur: &c.HoldRecheck},
		{env: "WAQ_TEMPLATE_RETRY", flag: "template-retry", usage: "how long a template a send found paused is held before one job tries it", dur: &c.TemplateRetry},
		{env: "WAQ_LOW_QUALITY_MARKETING", flag: "low-quality-marketing", usage: "marketing sends on a RED template or FLAGGED number: hold, slow or send", str: &c.LowQualityMarketing},
		{env: "WAQ_EVENTS_STREAM", flag: "events-stream", usage: "JetStream stream of status webhook events", str: &c.EventsStream},
		{env: "WAQ_RESEND_WINDOW", flag: "resend-window", usage: "how long a sent job is kept to be parked or sent again on a webhook failure", dur: &c.ResendWindow},
		{env: "WAQ_BODIES_STREAM", flag: "bodies-stream", usage: "JetStream stream of sent jobs' bodies, kept for the resend window", str: &c.BodiesStream},
		{env: "WAQ_LEDGER_BUCKETS", flag: "ledger-buckets", usage: "bucket count of the sent index's first window (later ones size themselves)", num: &c.LedgerBuckets},
		{env: "WAQ_PPROF", flag: "pprof", usage: "serve Go profiles under /debug/pprof/", boolean: &c.Pprof},
		{env: "WAQ_TRACE_URL", flag: "trace-url", usage: "trace link template with {trace_id}", str: &c.TraceURL},
	}
}

// SettingNames lists the environment variables of the worker's settings,
// in the order `waq worker -h` shows their flags. The phone-number file
// may name more (each number's token_env).
func SettingNames() []string {
	var c Config
	ss := c.settings()
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.env
	}
	return names
}

// Setting describes one setting of the worker: its variable, its flag of
// `waq worker`, what it is for and its default ("" when it has none).
type Setting struct {
	Env, Flag, Usage, Default string
	// Secret settings are better given as variables: flags show in ps.
	Secret bool
}

// Settings lists the worker's settings with their defaults, in the order
// of SettingNames. `waq worker -h` and the reference (docs/settings.md)
// show them.
func Settings() []Setting {
	var c Config
	c.ApplyDefaults()
	ss := c.settings()
	out := make([]Setting, len(ss))
	for i, s := range ss {
		out[i] = Setting{Env: s.env, Flag: s.flag, Usage: s.usage, Default: s.value(), Secret: s.secret}
	}
	return out
}

// value is the setting's current value as a user would write it ("" for
// an empty string, a duration as 720h or 25s rather than 720h0m0s).
func (s setting) value() string {
	switch {
	case s.str != nil:
		return *s.str
	case s.num != nil:
		return strconv.Itoa(*s.num)
	case s.dur != nil:
		return shortDuration(*s.dur)
	case s.boolean != nil:
		return strconv.FormatBool(*s.boolean)
	}
	return ""
}

// shortDuration drops the zero minutes and seconds Duration.String keeps.
func shortDuration(d time.Duration) string {
	v := d.String()
	if strings.HasSuffix(v, "m0s") {
		v = strings.TrimSuffix(v, "0s")
	}
	if strings.HasSuffix(v, "h0m") {
		v = strings.TrimSuffix(v, "0m")
	}
	return v
}

// ConfigError is a setting that does not parse or does not make sense.
type ConfigError struct {
	Setting string // the variable, e.g. WAQ_CONCURRENCY
	Problem string
}

func (e *ConfigError) Error() string { return e.Setting + ": " + e.Problem }

// BindFlags registers a flag per setting on fs; each flag's usage names
// its variable and its default (the flag itself stays unset, so that
// FromEnv can tell a flag given from one left out).
func (c *Config) BindFlags(fs *flag.FlagSet) {
	defaults := map[string]string{}
	for _, s := range Settings() {
		defaults[s.Env] = s.Default
	}
	for _, s := range c.settings() {
		name := s.flag
		usage := s.usage + " ($" + s.env
		// A back-quoted word names the flag's value in -h ("-ack-wait
		// duration"), which the flag package cannot tell for Func flags.
		switch {
		case s.num != nil:
			usage += ", a whole `number`"
		case s.dur != nil:
			usage += ", a `duration` like 30s"
		}
		if d := defaults[s.env]; d != "" && d != "false" {
			usage += "; default " + d
		}
		usage += ")"
		switch {
		case s.str != nil:
			fs.StringVar(s.str, name, "", usage)
		case s.num != nil:
			fs.Func(name, usage, intSetter(s.env, s.num))
		case s.dur != nil:
			fs.Func(name, usage, durSetter(s.env, s.dur))
		case s.boolean != nil:
			fs.BoolFunc(name, usage, boolSetter(s.env, s.boolean))
		}
	}
}

// setter parses a setting's value into p; a value it cannot parse is a
// ConfigError that says what was wanted.
func setter[T any](env string, p *T, parse func(string) (T, error), want string) func(string) error {
	return func(v string) error {
		x, err := parse(strings.TrimSpace(v))
		if err != nil {
			return &ConfigError{Setting: env, Problem: fmt.Sprintf("%q is not %s", v, want)}
		}
		*p = x
		return nil
	}
}

func boolSetter(env string, p *bool) func(string) error {
	return setter(env, p, strconv.ParseBool, "true or false")
}

func intSetter(env string, p *int) func(string) error {
	return setter(env, p, strconv.Atoi, "a whole number")
}

func durSetter(env string, p *time.Duration) func(string) error {
	return setter(env, p, time.ParseDuration, "a duration like 30s, 15m or 720h")
}

// FromEnv fills the settings that are still unset from the environment.
// Flags given on the command line win over variables.
func (c *Config) FromEnv(getenv func(string) string) error {
	for _, s := range c.settings() {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		switch {
		case s.str != nil:
			if *s.str == "" {
				*s.str = v
			}
		case s.num != nil:
			if *s.num == 0 {
				if err := intSetter(s.env, s.num)(v); err != nil {
					return err
				}
			}
		case s.dur != nil:
			if *s.dur == 0 {
				if err := durSetter(s.env, s.dur)(v); err != nil {
					return err
				}
			}
		case s.boolean != nil:
			if !*s.boolean {
				if err := boolSetter(s.env, s.boolean)(v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ApplyDefaults sets every unset field to its default.
func (c *Config) ApplyDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.NATSURL, queue.DefaultNATSURL)
	def(&c.RedisURL, DefaultRedisURL)
	def(&c.GraphURL, graph.DefaultBaseURL)
	def(&c.GraphVersion, graph.DefaultVersion)
	def(&c.HTTPAddr, ":8080")
	def(&c.Stream, queue.DefaultStream)
	def(&c.EventsStream, "WAQ_EVENTS")
	def(&c.BodiesStream, "WAQ_BODIES")
	def(&c.LogFormat, "json")
	def(&c.LogLevel, "info")
	def(&c.KeyPrefix, DefaultKeyPrefix)
	if c.Concurrency == 0 {
		c.Concurrency = 128
	}
	if c.StreamReplicas == 0 {
		c.StreamReplicas = 1
	}
	if c.LedgerBuckets == 0 {
		c.LedgerBuckets = 256
	}
	if c.DLQRetention == 0 {
		c.DLQRetention = 720 * time.Hour
	}
	if c.SentRetention == 0 {
		c.SentRetention = 168 * time.Hour
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 25 * time.Second
	}
	if c.GraphTimeout == 0 {
		c.GraphTimeout = 15 * time.Second
	}
	if c.AckWait == 0 {
		c.AckWait = 60 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 20000
	}
	if c.PauseParkAfter == 0 {
		c.PauseParkAfter = time.Hour
	}
	if c.ResendWindow == 0 {
		c.ResendWindow = 24 * time.Hour
	}
	if c.PauseProbe == 0 {
		c.PauseProbe = 15 * time.Second
	}
	if c.LevelEvery == 0 {
		c.LevelEvery = 5 * time.Minute
	}
	c.holdDefaults()
}

// Validate checks every setting and returns the first problem as a
// *ConfigError naming its variable. It does not read files; New does.
func (c *Config) Validate() error {
	checkURL := func(env, v string, schemes ...string) error {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" && u.Scheme != "unix" {
			return &ConfigError{Setting: env, Problem: fmt.Sprintf("%q is not a URL like %s://host:port", v, schemes[0])}
		}
		for _, s := range schemes {
			if u.Scheme == s {
				return nil
			}
		}
		return &ConfigError{Setting: env, Problem: fmt.Sprintf("%q: scheme %q, want %s", v, u.Scheme, strings.Join(schemes, " or "))}
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		if err := checkURL("WAQ_NATS_URL", strings.TrimSpace(u), "nats", "tls", "ws", "wss"); err != nil {
			return err
		}
	}
	ru, err := conn.ParseRedisURL(c.RedisURL)
	if err != nil {
		return &ConfigError{Setting: "WAQ_REDIS_URL", Problem: fmt.Sprintf("%q: %v", conn.Redact(c.RedisURL), strings.TrimPrefix(err.Error(), "redis url: "))}
	}
	if c.RedisWaitReplicas < 0 || c.RedisWaitReplicas > 16 {
		return &ConfigError{Setting: "WAQ_REDIS_WAIT_REPLICAS", Problem: fmt.Sprintf("%d: want 0 to 16", c.RedisWaitReplicas)}
	}
	if c.RedisWaitReplicas > 0 && ru.Kind == conn.RedisCluster {
		return &ConfigError{Setting: "WAQ_REDIS_WAIT_REPLICAS", Problem: "not supported with redis-cluster:// (WAIT cannot follow a cluster pipeline's writes to each node); set 0, or use one primary with replicas (redis-sentinel://)"}
	}
	if err := checkURL("WAQ_GRAPH_URL", c.GraphURL, "https", "http"); err != nil {
		return err
	}
	if _, err := graph.New(graph.Options{BaseURL: c.GraphURL, Version: c.GraphVersion}); err != nil {
		return &ConfigError{Setting: "WAQ_GRAPH_VERSION", Problem: fmt.Sprintf("%q: want the form v27.0", c.GraphVersion)}
	}
	if c.GraphH2C && !strings.HasPrefix(c.GraphURL, "http://") {
		return &ConfigError{Setting: "WAQ_GRAPH_H2C", Problem: "HTTP/2 without TLS needs an http:// WAQ_GRAPH_URL; https negotiates HTTP/2 by itself"}
	}
	if c.AccessToken == "" && c.PhoneNumbersFile == "" {
		return &ConfigError{Setting: "WAQ_ACCESS_TOKEN", Problem: "not set (and no WAQ_PHONE_NUMBERS_FILE gives tokens)"}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return &ConfigError{Setting: "WAQ_HTTP_ADDR", Problem: fmt.Sprintf("%q is not host:port (like :8080)", c.HTTPAddr)}
	}
	if c.WebhookAddr != "" {
		if _, _, err := net.SplitHostPort(c.WebhookAddr); err != nil {
			return &ConfigError{Setting: "WAQ_WEBHOOK_ADDR", Problem: fmt.Sprintf("%q is not host:port (like :8081)", c.WebhookAddr)}
		}
		if sameAddr(c.WebhookAddr, c.HTTPAddr) {
			return &ConfigError{Setting: "WAQ_WEBHOOK_ADDR", Problem: fmt.Sprintf("%q is WAQ_HTTP_ADDR's port: the webhook's own listener needs another (or leave it unset to serve /webhook on WAQ_HTTP_ADDR)", c.WebhookAddr)}
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 65536 {
		return &ConfigError{Setting: "WAQ_CONCURRENCY", Problem: fmt.Sprintf("%d: want 1 to 65536", c.Concurrency)}
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return &ConfigError{Setting: "WAQ_STREAM_REPLICAS", Problem: fmt.Sprintf("%d: want 1 to 5 (3 in a cluster)", c.StreamReplicas)}
	}
	if !validStreamName(c.Stream) {
		return &ConfigError{Setting: "WAQ_STREAM", Problem: fmt.Sprintf("%q: want letters, digits, - and _", c.Stream)}
	}
	if !validStreamName(c.EventsStream) || c.EventsStream == c.Stream {
		return &ConfigError{Setting: "WAQ_EVENTS_STREAM", Problem: fmt.Sprintf("%q: want letters, digits, - and _, and not the job stream's name", c.EventsStream)}
	}
	if !validStreamName(c.BodiesStream) || c.BodiesStream == c.Stream || c.BodiesStream == c.EventsStream {
		return &ConfigError{Setting: "WAQ_BODIES_STREAM", Problem: fmt.Sprintf("%q: want letters, digits, - and _, and not the job or events stream's name", c.BodiesStream)}
	}
	if c.LedgerBuckets < 1 || c.LedgerBuckets > 1<<26 {
		return &ConfigError{Setting: "WAQ_LEDGER_BUCKETS", Problem: fmt.Sprintf("%d: want 1 to 67108864", c.LedgerBuckets)}
	}
	for _, d := range []struct {
		env string
		v   time.Duration
		min time.Duration
	}{
		{"WAQ_DLQ_RETENTION", c.DLQRetention, time.Minute},
		{"WAQ_SENT_RETENTION", c.SentRetention, time.Minute},
		{"WAQ_RESEND_WINDOW", c.ResendWindow, time.Minute},
		{"WAQ_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, time.Second},
		{"WAQ_GRAPH_TIMEOUT", c.GraphTimeout, 100 * time.Millisecond},
		{"WAQ_ACK_WAIT", c.AckWait, time.Second},
		{"WAQ_PAUSE_PARK_AFTER", c.PauseParkAfter, time.Second},
		{"WAQ_PAUSE_PROBE_INTERVAL", c.PauseProbe, 100 * time.Millisecond},
		{"WAQ_THROUGHPUT_LEVEL_INTERVAL", c.LevelEvery, 10 * time.Second},
		{"WAQ_TEMPLATE_HOLD_MAX", c.TemplateHoldMax, time.Second},
		{"WAQ_HOLD_RECHECK", c.HoldRecheck, 100 * time.Millisecond},
		{"WAQ_TEMPLATE_RETRY", c.TemplateRetry, 100 * time.Millisecond},
	} {
		if d.v < d.min {
			return &ConfigError{Setting: d.env, Problem: fmt.Sprintf("%s is too short (at least %s)", d.v, d.min)}
		}
	}
	if c.AckWait <= c.GraphTimeout {
		return &ConfigError{Setting: "WAQ_ACK_WAIT", Problem: fmt.Sprintf("%s must be longer than WAQ_GRAPH_TIMEOUT (%s), or a slow send would be handed to a second worker", c.AckWait, c.GraphTimeout)}
	}
	if c.MaxAckPending < c.Concurrency {
		return &ConfigError{Setting: "WAQ_MAX_ACK_PENDING", Problem: fmt.Sprintf("%d is below WAQ_CONCURRENCY (%d)", c.MaxAckPending, c.Concurrency)}
	}
	if err := c.validateHolds(); err != nil {
		return err
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return &ConfigError{Setting: "WAQ_LOG_FORMAT", Problem: fmt.Sprintf("%q: want json or text", c.LogFormat)}
	}
	if (c.AppSecret == "") != (c.WebhookVerifyToken == "") {
		return &ConfigError{Setting: "WAQ_APP_SECRET", Problem: "set both WAQ_APP_SECRET and WAQ_WEBHOOK_VERIFY_TOKEN to serve /webhook, or neither"}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return &ConfigError{Setting: "WAQ_ADMIN_TOKEN", Problem: "shorter than 16 characters; use a long random token"}
	}
	for _, f := range []struct{ env, path string }{{"WAQ_POLICY_FILE", c.PolicyFile}, {"WAQ_PHONE_NUMBERS_FILE", c.PhoneNumbersFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return &ConfigError{Setting: f.env, Problem: fmt.Sprintf("%s: %v", f.path, unwrapPathErr(err))}
		}
	}
	if c.TraceURL != "" && !strings.Contains(c.TraceURL, "{trace_id}") {
		return &ConfigError{Setting: "WAQ_TRACE_URL", Problem: "want a template with {trace_id}"}
	}
	return nil
}

// sameAddr says whether two listen addresses would take the same port: the
// same port with the same host, or with either on all interfaces. Port 0
// (any free port, in tests) never clashes.
func sameAddr(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || any(ha) || any(hb)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func validStreamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
