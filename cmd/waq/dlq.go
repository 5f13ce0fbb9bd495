package main

// waq dlq: inspect, explain, export, replay and purge the dead-letter store.
// Every subcommand is a thin shell over package deadletter, which the admin
// API calls too; this file only parses flags and prints.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
)

func init() {
	register("dlq", "inspect, export, replay and purge parked jobs", runDLQ)
}

const dlqUsage = `Usage:
  waq dlq list   [--reason R] [--code N] [--phone-number-id P] [--template T] [--since DURATION] [--limit N] [--cursor C]
  waq dlq show   ID
  waq dlq stats  [--reason R] [--code N] [--phone-number-id P] [--template T] [--since DURATION]
  waq dlq replay (ID... | --reason R [--code N] [--template T] [--phone-number-id P] [--since D]) [--dry-run] [--as-template NAME --language CODE]
  waq dlq purge  (ID... | --reason R --older-than DURATION [--code N] [--template T] [--phone-number-id P]) [--dry-run]
  waq dlq export [--reason R] [--code N] [--phone-number-id P] [--template T] [--since DURATION] [--format json|text]
Every subcommand takes --json: one JSON object per line on stdout, nothing else.
Durations: 90m, 36h, 7d. Reasons: window, template, retries_exhausted, invalid,
undeliverable, expired, account, unknown.
Settings: WAQ_REDIS_URL, WAQ_NATS_URL (replay), WAQ_KEY_PREFIX, WAQ_DLQ_RETENTION,
WAQ_STREAM; without them, those of a running 'waq dev', then the defaults.
Exit status: 0 done, 1 failed for some entries (or Redis/NATS down), 2 bad usage.`

func runDLQ(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, dlqUsage)
		return usagef("a subcommand is needed: list, show, stats, replay, purge or export")
	}
	sub, rest := args[0], args[1:]
	var run func(context.Context, *Env, *dlqCmd) error
	switch sub {
	case "list":
		run = dlqList
	case "show":
		run = dlqShow
	case "stats":
		run = dlqStats
	case "replay":
		run = dlqReplay
	case "purge":
		run = dlqPurge
	case "export":
		run = dlqExport
	case "-h", "--help", "help":
		fmt.Fprintln(env.Stdout, dlqUsage)
		return nil
	default:
		return usagef("unknown subcommand %q (list, show, stats, replay, purge or export)", sub)
	}
	c, err := parseDLQ(env, sub, rest)
	if err != nil {
		return err
	}
	return run(ctx, env, c)
}

// dlqCmd is a parsed dlq command line.
type dlqCmd struct {
	sub     string
	p       deadletter.Params
	json    bool
	format  string
	args    []string
	redis   string
	natsURL string
}

// dlqFlags lists which flags each subcommand takes.
var dlqFlags = map[string][]string{
	"list":   {"reason", "code", "phone-number-id", "template", "since", "limit", "cursor"},
	"show":   {},
	"stats":  {"reason", "code", "phone-number-id", "template", "since"},
	"replay": {"reason", "code", "phone-number-id", "template", "since", "dry-run", "as-template", "language"},
	"purge":  {"reason", "code", "phone-number-id", "template", "older-than", "dry-run"},
	"export": {"reason", "code", "phone-number-id", "template", "since", "format"},
}

func parseDLQ(env *Env, sub string, args []string) (*dlqCmd, error) {
	c := &dlqCmd{sub: sub}
	fs := newFlags(env, "dlq "+sub, "[flags]\n"+dlqUsage)
	strs := map[string]*string{
		"reason": &c.p.Reason, "code": &c.p.Code, "phone-number-id": &c.p.PhoneNumberID, "template": &c.p.Template,
		"since": &c.p.Since, "limit": &c.p.Limit, "cursor": &c.p.Cursor, "older-than": &c.p.OlderThan,
		"as-template": &c.p.AsTemplate, "language": &c.p.Language, "format": &c.format,
	}
	help := map[string]string{
		"reason": "dead-letter `reason` (window, template, ...)", "code": "Graph API error code, a `number` like 131047",
		"phone-number-id": "business phone number `id`", "template": "template `name`", "since": "parked within this long, a `duration` (90m, 36h, 7d)",
		"limit": "entries per page, a `number` (default 100)", "cursor": "continue after this `cursor` (printed after a full page)",
		"older-than": "parked at least this long ago, a `duration` (0s: any age)", "as-template": "replay a free-form message as this template `name`",
		"language": "template language `code` for --as-template, like en_US", "format": "`json` or text (default text; json with --json)",
	}
	for _, name := range dlqFlags[sub] {
		if name == "dry-run" {
			fs.BoolVar(&c.p.DryRun, name, false, "say what would happen; change nothing")
			continue
		}
		fs.StringVar(strs[name], name, "", help[name])
	}
	fs.BoolVar(&c.json, "json", false, "one JSON object per line on stdout, nothing else")
	fs.StringVar(&c.redis, "redis-url", "", "Redis URL ($WAQ_REDIS_URL)")
	if sub == "replay" {
		fs.StringVar(&c.natsURL, "nats-url", "", "NATS URL ($WAQ_NATS_URL)")
	}
	pos, err := interspersed(fs, args)
	if err != nil {
		return nil, err
	}
	c.args = pos
	switch sub {
	case "show":
		if len(pos) != 1 {
			return nil, usagef("show takes one ID")
		}
	case "replay", "purge":
		c.p.IDs = pos
	default:
		if len(pos) > 0 {
			return nil, usagef("unexpected argument %q", pos[0])
		}
	}
	if c.format != "" && c.format != "json" && c.format != "text" {
		return nil, usagef("--format: want json or text, not %q", c.format)
	}
	if c.json && c.format == "text" {
		return nil, usagef("--json and --format text contradict each other")
	}
	return c, nil
}

// paramUsage turns the shared parameter check's error into bad usage,
// spelled as the CLI's flags.
func paramUsage(err error) error {
	var pe *deadletter.ParamError
	if errors.As(err, &pe) {
		if pe.Name == "" || pe.Name == "ids" {
			return usagef("%s", pe.Problem)
		}
		return usagef("%s: %s", pe.Flag(), pe.Problem)
	}
	return err
}

// openStore connects to the dead-letter store the worker writes, and
// sweeps the expired entries first so that what the command shows and
// counts is what is kept.
func openStore(ctx context.Context, env *Env, c *dlqCmd) (*deadletter.Store, func(), error) {
	url := resolve(env, redisSetting, c.redis)
	retention := 720 * time.Hour
	if v := env.Getenv("WAQ_DLQ_RETENTION"); v != "" {
		d, err := deadletter.ParseDuration(v)
		if err != nil {
			return nil, nil, usagef("WAQ_DLQ_RETENTION: %v", err)
		}
		retention = d
	}
	rdb, err := conn.Redis(url)
	if err != nil {
		return nil, nil, usagef("WAQ_REDIS_URL: %v", err)
	}
	closeFn := func() { _ = rdb.Close() }
	store := deadletter.New(rdb, deadletter.Options{Prefix: resolve(env, keyPrefixSetting, ""), Retention: retention})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := store.Ping(pctx); err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("redis at %s does not answer: %w", conn.Redact(url), err)
	}
	if _, err := store.Sweep(ctx); err != nil {
		closeFn()
		return nil, nil, err
	}
	return store, closeFn, nil
}

func dlqList(ctx context.Context, env *Env, c *dlqCmd) error {
	f, cursor, limit, err := c.p.ListArgs()
	if err != nil {
		return paramUsage(err)
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	page, err := store.List(ctx, f, cursor, limit)
	if err != nil {
		return paramUsage(err)
	}
	if c.json {
		enc := json.NewEncoder(env.Stdout)
		for _, e := range page.Entries {
			if err := enc.Encode(e.Summary()); err != nil {
				return err
			}
		}
		if page.Next != "" {
			fmt.Fprintf(env.Stderr, "more: --cursor %s\n", page.Next)
		}
		return nil
	}
	if len(page.Entries) == 0 {
		fmt.Fprintln(env.Stdout, "no parked jobs match")
		return nil
	}
	rows := make([][]string, len(page.Entries))
	for i, e := range page.Entries {
		s := e.Summary()
		code := "-"
		if s.Code != nil {
			code = strconv.Itoa(*s.Code)
		}
		rows[i] = []string{s.ID, s.Reason, code, s.PhoneNumberID, s.To, dash(s.Template), strconv.Itoa(s.Attempts), s.ParkedAt.Format("2006-01-02 15:04:05"), dash(s.FBTraceID)}
	}
	writeTable(env, []string{"ID", "REASON", "CODE", "PHONE NUMBER", "TO", "TEMPLATE", "SENDS", "PARKED (UTC)", "FBTRACE_ID"}, rows)
	if page.Next != "" {
		fmt.Fprintf(env.Stdout, "\nmore: add --cursor %s\n", page.Next)
	}
	return nil
}

func dlqShow(ctx context.Context, env *Env, c *dlqCmd) error {
	if err := queue.ValidateID(c.args[0]); err != nil {
		return usagef("%q is not a job id", c.args[0])
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	id, err := store.ResolveID(ctx, c.args[0])
	if err != nil {
		if errors.Is(err, deadletter.ErrNotFound) {
			return fmt.Errorf("%s: %w", c.args[0], err)
		}
		return err
	}
	e, err := store.Show(ctx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	if c.json {
		return json.NewEncoder(env.Stdout).Encode(e)
	}
	w := env.Stdout
	s := e.Summary()
	fmt.Fprintf(w, "id:               %s\nreason:           %s\n", e.ID, e.Reason)
	if e.Problem != "" {
		fmt.Fprintf(w, "problem:          %s\n", e.Problem)
	}
	fmt.Fprintf(w, "parked at:        %s (generation %d)\n", e.ParkedAt.UTC().Format(time.RFC3339), e.Replayed)
	fmt.Fprintf(w, "phone number id:  %s\nto:               %s\ntype:             %s\n", dash(e.PhoneNumberID), dash(e.To), dash(e.MessageType))
	if e.Template != "" {
		fmt.Fprintf(w, "template:         %s (%s)\n", e.Template, e.Language)
	}
	fmt.Fprintf(w, "trace id:         %s\nsends:            %d\n", dash(e.TraceID), s.Attempts)
	if len(e.Metadata) > 0 {
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "metadata:         %s=%s\n", k, e.Metadata[k])
		}
	}
	if e.LastError != nil {
		b, _ := json.MarshalIndent(map[string]any{"error": e.LastError}, "  ", "  ")
		fmt.Fprintf(w, "\nlast error:\n  %s\n", b)
	}
	if len(e.Job) > 0 {
		var v any
		if json.Unmarshal(e.Job, &v) == nil {
			b, _ := json.MarshalIndent(v, "  ", "  ")
			fmt.Fprintf(w, "\njob:\n  %s\n", b)
		}
	} else if len(e.Raw) > 0 {
		fmt.Fprintf(w, "\nbody (not JSON, %d bytes): %q\n", len(e.Raw), truncate(string(e.Raw), 200))
	}
	if len(e.Attempts) > 0 {
		fmt.Fprintln(w, "\nattempts:")
		rows := make([][]string, len(e.Attempts))
		for i, a := range e.Attempts {
			code := dash(a.Error)
			if a.Code != nil {
				code = strconv.Itoa(*a.Code)
			}
			rows[i] = []string{a.At.UTC().Format("2006-01-02 15:04:05"), strconv.Itoa(a.Gen), a.Outcome, dash(a.Action), code, dash(a.FBTraceID)}
		}
		writeTable(env, []string{"AT (UTC)", "GEN", "OUTCOME", "ACTION", "CODE", "FBTRACE_ID"}, rows)
	}
	return nil
}

func dlqStats(ctx context.Context, env *Env, c *dlqCmd) error {
	f, err := c.p.Filter()
	if err != nil {
		return paramUsage(err)
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	st, err := store.Stats(ctx, f)
	if err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(env.Stdout).Encode(st)
	}
	w := env.Stdout
	fmt.Fprintf(w, "%s\n\n", st.Verdict)
	if st.Total == 0 {
		return nil
	}
	fmt.Fprintf(w, "%d parked jobs to %d recipients", st.Total, st.Recipients)
	if st.Oldest != nil {
		fmt.Fprintf(w, ", parked %s to %s", st.Oldest.Format(time.RFC3339), st.Newest.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tpl := st.ByTemplate
	if st.FreeForm > 0 {
		tpl = map[string]int64{"(free-form)": st.FreeForm}
		for k, v := range st.ByTemplate {
			tpl[k] = v
		}
	}
	for _, sec := range []struct {
		title string
		m     map[string]int64
	}{{"REASON", st.ByReason}, {"CODE", st.ByCode}, {"PHONE NUMBER", st.ByPhoneNumber}, {"TEMPLATE", tpl}} {
		fmt.Fprintln(w)
		writeTable(env, []string{sec.title, "JOBS", "SHARE"}, topRows(sec.m, st.Total, 15))
	}
	return nil
}

// topRows sorts counts, largest first, cut at max with a line for the rest.
func topRows(m map[string]int64, total int64, max int) [][]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return m[keys[a]] > m[keys[b]] || m[keys[a]] == m[keys[b]] && keys[a] < keys[b] })
	var rows [][]string
	var rest int64
	for i, k := range keys {
		if i >= max {
			rest += m[k]
			continue
		}
		rows = append(rows, []string{k, strconv.FormatInt(m[k], 10), share(m[k], total)})
	}
	if rest > 0 {
		rows = append(rows, []string{fmt.Sprintf("(%d more)", len(keys)-max), strconv.FormatInt(rest, 10), share(rest, total)})
	}
	return rows
}

func share(n, total int64) string {
	if total == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 1, 64) + "%"
}

func dlqReplay(ctx context.Context, env *Env, c *dlqCmd) error {
	req, err := c.p.ReplayRequest()
	if err != nil {
		return paramUsage(err)
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	if req.IDs, err = expandIDs(ctx, store, req.IDs); err != nil {
		return err
	}
	var pub deadletter.Publisher
	if !req.DryRun {
		p, closeNATS, err := replayPublisher(ctx, env, c)
		if err != nil {
			return err
		}
		defer closeNATS()
		pub = p
	}
	out := newResultWriter(env, c.json, []string{"ID", "RESULT"})
	tot, err := store.Replay(ctx, pub, req, func(r deadletter.ReplayResult) error {
		what := "replayed (generation " + strconv.Itoa(r.Generation) + ")"
		switch {
		case r.Error != "" && r.Replayed:
			what = "replayed, but: " + r.Error
		case r.Error != "":
			what = "not replayed: " + r.Error
		case r.DryRun:
			what = "would replay (generation " + strconv.Itoa(r.Generation) + ")"
		}
		return out.write(r, []string{r.ID, what})
	})
	verb := "replayed"
	if req.DryRun {
		verb = "would replay"
	}
	return out.finish(tot, verb, err)
}

// replayPublisher connects to NATS and checks that the job stream is
// there: a replay into nothing would fail entry by entry.
func replayPublisher(ctx context.Context, env *Env, c *dlqCmd) (deadletter.Publisher, func(), error) {
	url := resolve(env, natsSetting, c.natsURL)
	stream := resolve(env, streamSetting, "")
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	nc, err := conn.NATS(cctx, url, "waq dlq replay")
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if _, err := js.Stream(cctx, stream); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("stream %s on %s: %w (a worker creates it; WAQ_STREAM names another)", stream, url, err)
	}
	tracing, err := telemetry.SetupTracing(ctx, "waq-dlq", env.Getenv)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	closeFn := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
		_ = nc.Drain()
		nc.Close()
	}
	return queue.NewProducer(js, queue.ProducerOptions{TracerProvider: tracing.Provider}), closeFn, nil
}

func dlqPurge(ctx context.Context, env *Env, c *dlqCmd) error {
	req, err := c.p.PurgeRequest()
	if err != nil {
		return paramUsage(err)
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	if req.IDs, err = expandIDs(ctx, store, req.IDs); err != nil {
		return err
	}
	out := newResultWriter(env, c.json, []string{"ID", "RESULT"})
	tot, err := store.Purge(ctx, req, func(r deadletter.PurgeResult) error {
		what := "purged"
		switch {
		case r.Error != "":
			what = "not purged: " + r.Error
		case r.DryRun:
			what = "would purge"
		}
		return out.write(r, []string{r.ID, what})
	})
	verb := "purged"
	if req.DryRun {
		verb = "would purge"
	}
	return out.finish(tot, verb, err)
}

func dlqExport(ctx context.Context, env *Env, c *dlqCmd) error {
	f, err := c.p.Filter()
	if err != nil {
		return paramUsage(err)
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	x, err := store.Export(ctx, f)
	if err != nil {
		return err
	}
	if c.json || c.format == "json" {
		return json.NewEncoder(env.Stdout).Encode(x)
	}
	return x.WriteText(env.Stdout)
}

// resultWriter prints the result lines of replay and purge: JSON lines, or
// rows of a table printed at the end (the columns need every row).
type resultWriter struct {
	env     *Env
	json    *json.Encoder
	headers []string
	rows    [][]string
}

func newResultWriter(env *Env, asJSON bool, headers []string) *resultWriter {
	w := &resultWriter{env: env, headers: headers}
	if asJSON {
		w.json = json.NewEncoder(env.Stdout)
	}
	return w
}

func (w *resultWriter) write(v any, row []string) error {
	if w.json != nil {
		return w.json.Encode(v)
	}
	w.rows = append(w.rows, row)
	return nil
}

// finish prints the table and a summary, and gives the exit status: 1 when
// some entry failed or the operation stopped.
func (w *resultWriter) finish(tot deadletter.Totals, verb string, err error) error {
	if w.json == nil {
		if len(w.rows) > 0 {
			writeTable(w.env, w.headers, w.rows)
			fmt.Fprintln(w.env.Stdout)
		}
		fmt.Fprintf(w.env.Stdout, "%s %d, failed %d\n", verb, tot.Done, tot.Failed)
	}
	if err != nil {
		return err
	}
	if tot.Failed > 0 {
		if w.json != nil {
			fmt.Fprintf(w.env.Stderr, "waq dlq: %s %d, failed %d\n", verb, tot.Done, tot.Failed)
		}
		return &exitError{code: 1}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
