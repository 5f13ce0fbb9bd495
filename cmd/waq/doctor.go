package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/doctor"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/numbers"
)

func init() {
	register("doctor", "run the 131000 troubleshooting guide and the durability checks", runDoctor)
}

func runDoctor(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "doctor", "[--phone-number-id P] [--template NAME --language CODE] [--to N | --recipient BSUID] [--json]")
	var o doctor.Options
	fs.StringVar(&o.PhoneNumberID, "phone-number-id", "", "business phone number to check")
	fs.StringVar(&o.WABAID, "waba-id", "", "WABA of the template (default: the phone-number file's)")
	fs.StringVar(&o.Template, "template", "", "template name to check")
	fs.StringVar(&o.Language, "language", "", "template language code, like en_US")
	fs.StringVar(&o.To, "to", "", "recipient number to check the format of")
	fs.StringVar(&o.Recipient, "recipient", "", "recipient business-scoped user ID (BSUID) to check the format of, instead of --to")
	fs.StringVar(&o.NATSMonitorURL, "nats-monitor-url", "", "NATS monitoring endpoint, to read the sync setting (default: a running waq dev's, else the server's host, port 8222)")
	since := fs.Duration("since", 24*time.Hour, "how far back the dead-letter check looks")
	asJSON := fs.Bool("json", false, "one JSON object per check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if o.Template != "" && o.Language == "" {
		return usagef("--template needs --language (like en_US)")
	}
	if o.To != "" && o.Recipient != "" {
		return usagef("give --to (a number) or --recipient (a business-scoped user ID), not both")
	}
	if *since <= 0 {
		return usagef("--since must be positive")
	}
	o.Since = *since
	// Beside a running waq dev, its number and WABA are the ones to check
	// (its token and simulator come below), unless a phone-number file
	// says which numbers there are.
	if env.Getenv("WAQ_PHONE_NUMBERS_FILE") == "" {
		if o.PhoneNumberID == "" {
			o.PhoneNumberID = devSetting(env, "phone_number_id")
		}
		if o.WABAID == "" && o.PhoneNumberID == devSetting(env, "phone_number_id") {
			o.WABAID = devSetting(env, "waba_id")
		}
	}

	gc, err := graph.New(graph.Options{BaseURL: resolve(env, graphSetting, ""),
		Version: env.Getenv("WAQ_GRAPH_VERSION"), Timeout: 15 * time.Second})
	if err != nil {
		return usagef("WAQ_GRAPH_URL: %v", err)
	}
	o.Graph = gc
	tokens := func(k string) string {
		if k == numbers.DefaultTokenEnv {
			return resolve(env, tokenSetting, "")
		}
		return env.Getenv(k)
	}
	reg, err := numbers.Load(env.Getenv("WAQ_PHONE_NUMBERS_FILE"), tokens)
	if err != nil {
		return fmt.Errorf("WAQ_PHONE_NUMBERS_FILE: %w", err)
	}
	o.Numbers = reg

	var pre []doctor.Result
	// What the workers do with a hold, to say so beside it.
	o.LowQualityMarketing = env.Getenv("WAQ_LOW_QUALITY_MARKETING")
	o.HoldMax = 24 * time.Hour
	if v := env.Getenv("WAQ_TEMPLATE_HOLD_MAX"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return usagef("WAQ_TEMPLATE_HOLD_MAX: %q is not a positive duration", v)
		}
		o.HoldMax = d
	}
	redisURL := resolve(env, redisSetting, "")
	if rdb, err := conn.Redis(redisURL); err != nil {
		pre = append(pre, doctor.Result{Check: "redis", Status: doctor.Fail, Detail: err.Error(), Fix: "fix WAQ_REDIS_URL"})
	} else {
		defer rdb.Close()
		o.Redis = rdb
		o.KeyPrefix = resolve(env, keyPrefixSetting, "")
		o.Store = deadletter.New(rdb, deadletter.Options{Prefix: o.KeyPrefix})
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			pre = append(pre, doctor.Result{Check: "redis", Status: doctor.Fail, Detail: "redis at " + conn.Redact(redisURL) + " does not answer: " + err.Error(), Fix: "check WAQ_REDIS_URL"})
			o.Redis, o.Store = nil, nil
		}
	}
	natsURL := resolve(env, natsSetting, "")
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	nc, err := conn.NATS(cctx, natsURL, "waq doctor", nats.MaxReconnects(0))
	cancel()
	if err != nil {
		pre = append(pre, doctor.Result{Check: "jetstream", Status: doctor.Fail, Detail: err.Error(), Fix: "check WAQ_NATS_URL"})
	} else {
		defer nc.Close()
		o.NATS = nc
		o.Stream = resolve(env, streamSetting, "")
		// Beside waq dev, its embedded server's monitoring endpoint.
		if o.NATSMonitorURL == "" && natsURL == devSetting(env, natsSetting.dev) {
			o.NATSMonitorURL = devSetting(env, "nats_monitor_url")
		}
	}

	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	results := append(doctor.Run(rctx, o), pre...)
	for _, r := range results {
		if *asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(env.Stdout, string(b))
			continue
		}
		line := fmt.Sprintf("%-4s  %-14s %s", r.Status, r.Check, r.Detail)
		if r.Fix != "" {
			line += " — " + r.Fix
		}
		fmt.Fprintln(env.Stdout, line)
	}
	if doctor.Failed(results) {
		return &exitError{code: 1}
	}
	return nil
}
