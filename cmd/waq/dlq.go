package main

// waq dlq: inspect, explain, export, replay and purge the dead-letter store.
// Every subcommand is a thin shell over package deadletter, which the admin
// API calls too. This file parses the flags and opens the store;
// dlqread.go and dlqchange.go run the subcommands, dlqout.go prints.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
)

func init() {
	register("dlq", "inspect, export, replay and purge parked jobs", runDLQ)
}

const dlqUsage = `Usage:
  waq dlq list   [--reason R] [--code N] [--phone-number-id P] [--template T] [--to N | --recipient BSUID] [--since DURATION] [--limit N] [--cursor C]
  waq dlq show   ID
  waq dlq stats  [--reason R] [--code N] [--phone-number-id P] [--template T] [--to N | --recipient BSUID] [--since DURATION]
  waq dlq replay (ID... | --reason R [--code N] [--template T] [--phone-number-id P] [--to N | --recipient BSUID] [--since D]) [--dry-run] [--as-template NAME --language CODE]
  waq dlq purge  (ID... | --reason R --older-than DURATION [--code N] [--template T] [--phone-number-id P] [--to N | --recipient BSUID]) [--dry-run]
  waq dlq export [--reason R] [--code N] [--phone-number-id P] [--template T] [--to N | --recipient BSUID] [--since DURATION] [--format json|text]
Every subcommand takes --json: one JSON object per line on stdout, nothing else.
--to takes a recipient's number, --recipient a business-scoped user ID.
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
	"list":   {"reason", "code", "phone-number-id", "template", "to", "recipient", "since", "limit", "cursor"},
	"show":   {},
	"stats":  {"reason", "code", "phone-number-id", "template", "to", "recipient", "since"},
	"replay": {"reason", "code", "phone-number-id", "template", "to", "recipient", "since", "dry-run", "as-template", "language"},
	"purge":  {"reason", "code", "phone-number-id", "template", "to", "recipient", "older-than", "dry-run"},
	"export": {"reason", "code", "phone-number-id", "template", "to", "recipient", "since", "format"},
}

func parseDLQ(env *Env, sub string, args []string) (*dlqCmd, error) {
	c := &dlqCmd{sub: sub}
	fs := newFlags(env, "dlq "+sub, "[flags]\n"+dlqUsage)
	strs := map[string]*string{
		"reason": &c.p.Reason, "code": &c.p.Code, "phone-number-id": &c.p.PhoneNumberID, "template": &c.p.Template,
		"to": &c.p.To, "recipient": &c.p.Recipient, "since": &c.p.Since, "limit": &c.p.Limit, "cursor": &c.p.Cursor, "older-than": &c.p.OlderThan,
		"as-template": &c.p.AsTemplate, "language": &c.p.Language, "format": &c.format,
	}
	help := map[string]string{
		"reason": "dead-letter `reason` (window, template, ...)", "code": "Graph API error code, a `number` like 131047",
		"phone-number-id": "business phone number `id`", "template": "template `name`",
		"to": "recipient's `number` (digits with country code)", "recipient": "recipient's business-scoped user `ID` (US.1349...)", "since": "parked within this long, a `duration` (90m, 36h, 7d)",
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

// openFor checks a subcommand's parameters (bad ones are bad usage) and
// then opens the store: a mistyped flag costs no connection.
func openFor[R any](ctx context.Context, env *Env, c *dlqCmd, check func() (R, error)) (R, *deadletter.Store, func(), error) {
	req, err := check()
	if err != nil {
		return req, nil, nil, paramUsage(err)
	}
	store, done, err := openStore(ctx, env, c)
	return req, store, done, err
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
