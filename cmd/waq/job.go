package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

func init() {
	register("job", "show what became of a job: sent (wamid, delivery status) or parked, and its attempts", runJob)
}

// jobView is `waq job show --json`.
type jobView struct {
	ID       string     `json:"id"`
	Outcome  string     `json:"outcome"` // sent, parked, pending (no outcome yet), unknown
	WAMID    string     `json:"wamid,omitempty"`
	SentAt   *time.Time `json:"sent_at,omitempty"`
	Status   string     `json:"status,omitempty"` // the last delivery status a webhook reported
	StatusAt *time.Time `json:"status_at,omitempty"`
	// MessageStatus is the send answer's message_status (accepted,
	// held_for_quality_assessment, paused, other).
	MessageStatus string `json:"message_status,omitempty"`
	// Pricing is the first pricing a status webhook reported.
	Pricing *ledger.Pricing `json:"pricing,omitempty"`
	// RecipientUserID and RecipientParentUserID are the business-scoped
	// user IDs status webhooks gave for the recipient, masked
	// (US.••••1918, US.ENT.••••4830).
	RecipientUserID       string           `json:"recipient_user_id,omitempty"`
	RecipientParentUserID string           `json:"recipient_parent_user_id,omitempty"`
	Reason                string           `json:"reason,omitempty"` // when parked: see waq dlq show
	Gen                   int              `json:"generation"`
	TraceID               string           `json:"trace_id,omitempty"`
	Attempts              []ledger.Attempt `json:"attempts"`
}

const jobUsage = "show ID [--json] [--redis-url URL]   (ID: a job id, or a unique start of one)"

func runJob(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(env.Stdout, "Usage: waq job "+jobUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "show" {
		return usagef("usage: waq job %s", jobUsage)
	}
	fs := newFlags(env, "job show", "ID [--json] [--redis-url URL]")
	asJSON := fs.Bool("json", false, "one JSON object")
	redisURL := fs.String("redis-url", "", "Redis URL ($WAQ_REDIS_URL)")
	rest, err := interspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("want one job id")
	}
	id := rest[0]
	if err := queue.ValidateID(id); err != nil {
		return usagef("%v", err)
	}
	url := resolve(env, redisSetting, *redisURL)
	rdb, err := conn.Redis(url)
	if err != nil {
		return usagef("WAQ_REDIS_URL: %v", err)
	}
	defer rdb.Close()
	l := ledger.New(rdb, ledger.Options{Prefix: resolve(env, keyPrefixSetting, "")})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	full, err := l.ResolveID(cctx, id)
	if errors.Is(err, ledger.ErrNoRecord) {
		// Not found is a failure (exit status 1), said on stderr, the same
		// with --json: stdout stays for what was found.
		return fmt.Errorf("job %s: no record (never processed, or past WAQ_SENT_RETENTION)", id)
	}
	if err != nil {
		var amb *queue.AmbiguousIDError
		if errors.As(err, &amb) {
			return err
		}
		return fmt.Errorf("redis at %s: %w", conn.Redact(url), err)
	}
	id = full
	st, err := l.Load(cctx, id)
	if err != nil {
		return fmt.Errorf("redis at %s: %w", conn.Redact(url), err)
	}
	h, err := l.History(cctx, id)
	if err != nil {
		return err
	}
	if st.Parked != "" && len(h) == 0 {
		// A parked job's attempts are in its dead-letter entry.
		e, err := deadletter.New(rdb, deadletter.Options{Prefix: resolve(env, keyPrefixSetting, "")}).Get(cctx, id)
		switch {
		case err == nil:
			h = e.Attempts
		case !errors.Is(err, deadletter.ErrNotFound):
			return fmt.Errorf("redis at %s: %w", conn.Redact(url), err)
		}
	}
	h = st.WithSend(h)
	v := jobView{ID: id, Gen: st.Gen, TraceID: st.TraceID, Attempts: h, Status: st.Status, WAMID: st.WAMID, Reason: st.Parked,
		MessageStatus: st.MessageStatus, Pricing: st.Pricing,
		RecipientUserID: deadletter.MaskRecipient(st.Recipient.UserID), RecipientParentUserID: deadletter.MaskRecipient(st.Recipient.ParentUserID)}
	if v.Attempts == nil {
		v.Attempts = []ledger.Attempt{}
	}
	switch {
	case st.Sent():
		v.Outcome = "sent"
		t := st.SentAt
		v.SentAt = &t
	case st.Parked != "":
		v.Outcome = "parked"
	case len(h) > 0 || st.Gen > 0:
		v.Outcome = "pending"
	default:
		v.Outcome = "unknown"
	}
	if !st.StatusAt.IsZero() {
		t := st.StatusAt
		v.StatusAt = &t
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(v)
	}
	fmt.Fprintf(env.Stdout, "job        %s\noutcome    %s\n", id, v.Outcome)
	if v.WAMID != "" {
		fmt.Fprintf(env.Stdout, "wamid      %s\nsent at    %s\n", v.WAMID, v.SentAt.Format(time.RFC3339))
	}
	if v.Status != "" {
		fmt.Fprintf(env.Stdout, "status     %s (%s)\n", v.Status, v.StatusAt.Format(time.RFC3339))
	}
	if v.MessageStatus != "" {
		fmt.Fprintf(env.Stdout, "message    %s\n", v.MessageStatus)
	}
	if p := v.Pricing; p != nil {
		billable := "not billable"
		if p.Billable {
			billable = "billable"
		}
		fmt.Fprintf(env.Stdout, "pricing    %s %s %s, %s\n", dash(p.PricingModel), dash(p.Category), dash(p.Type), billable)
	}
	if v.RecipientUserID != "" {
		fmt.Fprintf(env.Stdout, "user id    %s\n", v.RecipientUserID)
	}
	if v.RecipientParentUserID != "" {
		fmt.Fprintf(env.Stdout, "parent id  %s\n", v.RecipientParentUserID)
	}
	if v.Reason != "" {
		fmt.Fprintf(env.Stdout, "reason     %s   (waq dlq show %s)\n", v.Reason, id)
	}
	if v.TraceID != "" {
		fmt.Fprintf(env.Stdout, "trace      %s\n", v.TraceID)
	}
	fmt.Fprintf(env.Stdout, "generation %d\n", v.Gen)
	if len(h) > 0 {
		fmt.Fprintln(env.Stdout, "attempts:")
		for _, a := range h {
			code := "-"
			if a.Code != nil {
				code = fmt.Sprint(*a.Code)
			}
			fmt.Fprintf(env.Stdout, "  %s  gen %d  %-9s %-8s code %-7s %s %s\n", a.At.Format(time.RFC3339), a.Gen, a.Outcome, a.Action, code, a.FBTraceID, a.Error)
		}
	}
	return nil
}
