package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
)

func init() {
	register("send", "enqueue one job; prints its id", runSend)
}

func runSend(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "send", "--phone-number-id P (--to N | --recipient BSUID) (--template NAME --language CODE [--param V]... | --text T | --file job.json)")
	var (
		pn, to, recipient, tpl, lang, text, file, id, notAfter string
		params, meta                                           stringList
		natsURL, stream                                        string
	)
	fs.StringVar(&pn, "phone-number-id", "", "business phone number id that sends")
	fs.StringVar(&to, "to", "", "recipient: digits with country code, like 15551234567")
	fs.StringVar(&recipient, "recipient", "", "recipient by business-scoped user ID, like US.13491208655302741918 (instead of --to)")
	fs.StringVar(&tpl, "template", "", "template name")
	fs.StringVar(&lang, "language", "", "template language code, like en_US")
	fs.Var(&params, "param", "template body parameter (repeatable, in order)")
	fs.StringVar(&text, "text", "", "free-form text (only inside the 24-hour window)")
	fs.StringVar(&file, "file", "", "a job (or a message object) as JSON; - for stdin")
	fs.StringVar(&id, "id", "", "idempotency key (default: a new UUIDv7)")
	fs.StringVar(&notAfter, "not-after", "", "park as expired if unsent by then (RFC 3339, or a duration like 2h)")
	fs.Var(&meta, "metadata", "key=value carried with the job (repeatable)")
	fs.StringVar(&natsURL, "nats-url", "", "NATS URL ($WAQ_NATS_URL)")
	fs.StringVar(&stream, "stream", "", "stream name ($WAQ_STREAM)")
	asJSON := fs.Bool("json", false, `print {"id": "..."} rather than the bare id`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	job, err := buildJob(env, pn, to, recipient, tpl, lang, text, file, id, notAfter, params, meta)
	if err != nil {
		return usagef("%v", err)
	}
	natsURL = resolve(env, natsSetting, natsURL)
	stream = resolve(env, streamSetting, stream)
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	nc, js, err := conn.JetStream(cctx, natsURL, "waq send")
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := queue.EnsureStream(cctx, js, queue.StreamConfig{Name: stream, Replicas: replicasFromEnv(env)}); err != nil {
		return err
	}
	// The job's trace starts here when OTEL_* configures an exporter, as it
	// does for `waq dlq replay`: the worker's attempts join it.
	tracing, err := telemetry.SetupTracing(ctx, "waq-send", env.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
	}()
	jid, err := queue.NewProducer(js, queue.ProducerOptions{TracerProvider: tracing.Provider}).Publish(cctx, job)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(struct {
			ID string `json:"id"`
		}{jid})
	}
	fmt.Fprintln(env.Stdout, jid)
	return nil
}

// buildJob makes the job from the flags, refusing what the worker would park
// as invalid.
func buildJob(env *Env, pn, to, recipient, tpl, lang, text, file, id, notAfter string, params, meta stringList) (*queue.Job, error) {
	job := &queue.Job{}
	kinds := 0
	for _, s := range []string{tpl, text, file} {
		if s != "" {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, fmt.Errorf("give exactly one of --template, --text or --file")
	}
	if to != "" && recipient != "" {
		return nil, fmt.Errorf("give one of --to (a number) and --recipient (a business-scoped user ID)")
	}
	// The addressee the flags give: key is the message field it goes in.
	key, addr := "to", to
	if recipient != "" {
		key, addr = "recipient", recipient
	}
	if tpl == "" && (lang != "" || len(params) > 0) {
		return nil, fmt.Errorf("--language and --param go with --template")
	}
	if file != "" {
		var data []byte
		var err error
		if file == "-" {
			data, err = readAllLimited(env.Stdin, queue.MaxJobBytes)
		} else {
			data, err = os.ReadFile(file)
		}
		if err != nil {
			return nil, fmt.Errorf("--file: %v", err)
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("--file %s: %s", file, jsonWords(err, "a JSON object: a job, or a message object"))
		}
		if _, isJob := probe["message"]; isJob {
			if err := json.Unmarshal(data, job); err != nil {
				if strings.Contains(err.Error(), "Time") || strings.Contains(err.Error(), "parsing time") { // not_after, the job's one time
					return nil, fmt.Errorf("--file %s: field \"not_after\": want an RFC 3339 time like \"2026-11-25T18:00:00Z\"", file)
				}
				return nil, fmt.Errorf("--file %s: %s", file, jsonWords(err, "a job object"))
			}
		} else {
			job.Message = data
		}
		// A flag that says otherwise than the file is a mistake to point
		// out, not a silent override: the file may have been meant for
		// another recipient or number.
		if pn != "" && job.PhoneNumberID != "" && pn != job.PhoneNumberID {
			return nil, fmt.Errorf("--phone-number-id %s, but the file has phone_number_id %s: give one of them", pn, job.PhoneNumberID)
		}
		if addr != "" {
			var m struct {
				To        *string `json:"to"`
				Recipient *string `json:"recipient"`
			}
			if json.Unmarshal(job.Message, &m) == nil {
				for _, f := range []struct {
					k string
					v *string
				}{{"to", m.To}, {"recipient", m.Recipient}} {
					if f.v != nil && *f.v != "" && (f.k != key || *f.v != addr) {
						return nil, fmt.Errorf("--%s %s, but the file's message has %s %s: give one of them", key, addr, f.k, *f.v)
					}
				}
			}
		}
	}
	if pn != "" {
		job.PhoneNumberID = pn
	}
	if job.PhoneNumberID == "" {
		return nil, fmt.Errorf("--phone-number-id is required")
	}
	if tpl != "" || text != "" {
		if addr == "" {
			return nil, fmt.Errorf("--to or --recipient is required")
		}
		if err := validateAddressee(key, addr); err != nil {
			return nil, err
		}
		if tpl != "" {
			if lang == "" {
				return nil, fmt.Errorf("--template needs --language (like en_US)")
			}
			job.Message = queue.TemplateMessage(to, tpl, lang, params...)
		} else {
			job.Message = queue.TextMessage(to, text)
		}
		if key == "recipient" {
			job.Message = readdress(job.Message, key, addr)
		}
	} else if addr != "" {
		if err := validateAddressee(key, addr); err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(job.Message, &m); err != nil {
			return nil, fmt.Errorf("--file: the message is not a JSON object")
		}
		job.Message = readdress(job.Message, key, addr)
	}
	if id != "" {
		job.ID = id
	}
	if notAfter != "" {
		t, err := time.Parse(time.RFC3339, notAfter)
		if err != nil {
			d, derr := time.ParseDuration(notAfter)
			if derr != nil || d <= 0 {
				return nil, fmt.Errorf("--not-after %q: want an RFC 3339 time or a positive duration like 2h", notAfter)
			}
			t = time.Now().Add(d).UTC()
		}
		job.NotAfter = &t
	}
	for _, kv := range meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--metadata %q: want key=value", kv)
		}
		if job.Metadata == nil {
			job.Metadata = map[string]string{}
		}
		job.Metadata[k] = v
	}
	if job.ID != "" {
		if err := queue.ValidateID(job.ID); err != nil {
			return nil, err
		}
	}
	probe := *job
	if probe.ID == "" {
		probe.ID = "probe"
	}
	if _, err := probe.Validate(); err != nil {
		return nil, err
	}
	return job, nil
}

// validateAddressee checks --to (a number) or --recipient (a BSUID).
func validateAddressee(key, addr string) error {
	if key == "recipient" {
		if err := queue.ValidateUserID(addr); err != nil {
			return fmt.Errorf("--recipient: %s", strings.TrimPrefix(err.Error(), "invalid job: message.recipient: "))
		}
		return nil
	}
	if err := queue.ValidateRecipient(addr); err != nil {
		return fmt.Errorf("--to: %s", strings.TrimPrefix(err.Error(), "invalid job: message.to: "))
	}
	return nil
}

// readdress sets the message object's addressee: key (to or recipient) is
// addr, and the other field is dropped. msg is a JSON object.
func readdress(msg json.RawMessage, key, addr string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil {
		return msg
	}
	delete(m, "to")
	delete(m, "recipient")
	m[key], _ = json.Marshal(addr)
	out, _ := json.Marshal(m)
	return out
}
