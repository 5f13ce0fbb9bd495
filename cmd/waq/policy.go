package main

// waq policy: check a policy file, explain which rule applies to a code,
// show the effective table. Nothing here connects to anything.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/policy"
)

func init() {
	register("policy", "check a policy file, explain the rule for a code, show the table", runPolicy)
}

const policyUsage = `Usage:
  waq policy check FILE [--json]
  waq policy explain CODE [--policy FILE] [--json]    CODE: 131000, http:503 or transport
  waq policy show [--policy FILE] [--json]
--policy defaults to $WAQ_POLICY_FILE; without either, the built-in table.`

func runPolicy(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return usagef("a subcommand is needed: check, explain or show")
	}
	switch args[0] {
	case "check":
		return policyCheck(env, args[1:])
	case "explain":
		return policyExplain(env, args[1:])
	case "show":
		return policyShow(env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(env.Stdout, policyUsage)
		return nil
	}
	return usagef("unknown subcommand %q (check, explain or show)", args[0])
}

func policyCheck(env *Env, args []string) error {
	fs := newFlags(env, "policy check", "FILE [--json]")
	asJSON := fs.Bool("json", false, `one JSON object: {"file", "ok", "rules", "api"} or {"file", "ok": false, "error"}`)
	pos, err := interspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("check takes one FILE")
	}
	type result struct {
		File  string `json:"file"`
		OK    bool   `json:"ok"`
		Rules int    `json:"rules,omitempty"`
		API   string `json:"api,omitempty"` // defaults.api, when the file sets it
		Error string `json:"error,omitempty"`
	}
	p, err := policy.Load(pos[0])
	if err != nil {
		// The error is already "file:line: field: problem", the form editors
		// and CI logs jump to; print it bare.
		msg := policyOneLine(err.Error())
		if *asJSON {
			_ = json.NewEncoder(env.Stdout).Encode(result{File: pos[0], Error: msg})
		}
		fmt.Fprintln(env.Stderr, msg)
		return &exitError{code: 1}
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(result{File: pos[0], OK: true, Rules: p.FileRules(), API: p.API()})
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d %s over the default table)\n", pos[0], p.FileRules(), policyPlural(p.FileRules(), "rule", "rules"))
	return nil
}

func policyOneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func policyPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// policyLoad reads --policy, or WAQ_POLICY_FILE, or returns the built-in
// table.
func policyLoad(env *Env, path string) (*policy.Policy, error) {
	if path == "" && env.Getenv != nil {
		path = env.Getenv("WAQ_POLICY_FILE")
	}
	if path == "" {
		return policy.Default(), nil
	}
	return policy.Load(path)
}

// policyFailure reads the CODE argument of explain: a Graph API error code
// (0 is a real one), "http:503" for an answer without a code, or
// "transport" for a send without a usable answer.
func policyFailure(s string) (graph.Failure, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.EqualFold(s, "transport"):
		return graph.Failure{Transport: true}, nil
	case strings.HasPrefix(strings.ToLower(s), "http:"):
		n, err := strconv.Atoi(s[len("http:"):])
		if err != nil || n < 100 || n > 599 {
			return graph.Failure{}, usagef("%q: an HTTP status is http:100 to http:599", s)
		}
		return graph.Failure{HTTPStatus: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return graph.Failure{}, usagef("%q is not a code (such as 131000), http:STATUS or transport", s)
	}
	return graph.Failure{HasCode: true, Code: n}, nil
}

// policyRuleJSON is how explain --json and show --json print a rule.
type policyRuleJSON struct {
	Query       string             `json:"query,omitempty"`
	Matches     string             `json:"matches"`
	Action      policy.Action      `json:"action"`
	Reason      string             `json:"reason"`
	MaxAttempts int                `json:"max_attempts,omitempty"`
	Backoff     *policyBackoffJSON `json:"backoff,omitempty"`
	Delays      []string           `json:"delays,omitempty"`
	Scope       policy.Scope       `json:"scope,omitempty"`
	Source      string             `json:"source"`
}

type policyBackoffJSON struct {
	Initial    string  `json:"initial"`
	Multiplier float64 `json:"multiplier"`
	Max        string  `json:"max"`
	Jitter     float64 `json:"jitter"`
}

func policyDescribe(p *policy.Policy, r *policy.Rule) policyRuleJSON {
	out := policyRuleJSON{Matches: r.Matches(), Action: r.Action, Reason: r.Reason, Scope: r.Scope, Source: r.Source}
	if r.Action == policy.Park {
		return out
	}
	out.MaxAttempts = p.MaxAttemptsOf(r)
	b := p.BackoffOf(r)
	out.Backoff = &policyBackoffJSON{Initial: policy.FormatDuration(b.Initial), Multiplier: b.Multiplier, Max: policy.FormatDuration(b.Max), Jitter: b.Jitter}
	out.Delays = policyDelays(b, out.MaxAttempts)
	return out
}

// policyDelays lists the range of each wait a rule can produce, up to the
// cap (at most 8 entries: past the cap they repeat).
func policyDelays(b policy.Backoff, maxAttempts int) []string {
	var out []string
	for n := 1; n < maxAttempts && n <= 8; n++ {
		lo := b.Delay(n, func() float64 { return 0 }).Round(100 * time.Millisecond)
		hi := b.Delay(n, func() float64 { return 0.999999999 }).Round(100 * time.Millisecond)
		s := policy.FormatDuration(lo)
		if hi != lo {
			s += "-" + policy.FormatDuration(hi)
		}
		if len(out) > 0 && out[len(out)-1] == s {
			break // capped: every later wait is the same
		}
		out = append(out, s)
	}
	return out
}

func policySource(s string) string {
	if s == policy.SourceDefault {
		return "default table"
	}
	return s
}

func policyExplain(env *Env, args []string) error {
	fs := newFlags(env, "policy explain", "CODE [--policy FILE] [--json]   (CODE: 131000, http:503 or transport)")
	file := fs.String("policy", "", "policy file (default $WAQ_POLICY_FILE, else the built-in table)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := interspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("explain takes one CODE (such as 131000, http:503 or transport)")
	}
	f, err := policyFailure(pos[0])
	if err != nil {
		return err
	}
	p, err := policyLoad(env, *file)
	if err != nil {
		return err
	}
	r := p.Lookup(f)
	d := policyDescribe(p, r)
	d.Query = pos[0]
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(d)
	}
	return policyExplainText(env.Stdout, r, d)
}

func policyExplainText(w io.Writer, r *policy.Rule, d policyRuleJSON) error {
	// Fixed-width labels, not a tabwriter: the layout is the same whatever
	// the rule, so operators (and tests) can grep "reason:       window".
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-13s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "%s: %s\n", d.Query, d.Action)
	line("matches", "%s", d.Matches)
	switch d.Action {
	case policy.Park:
		line("reason", "%s (parked at once, never sent again)", d.Reason)
	default:
		line("reason", "%s (when the attempts are spent)", d.Reason)
		whose := "the rule's own"
		if r.MaxAttempts == 0 {
			whose = "the policy's max_attempts"
			if r.Action != policy.Retry {
				whose = "the policy's max_sends"
			}
		}
		line("max_attempts", "%d (%s; sends of the job, the first included)", d.MaxAttempts, whose)
		whose = "the rule's own"
		if r.Backoff == nil {
			whose = "the policy's"
		}
		b := d.Backoff
		line("backoff", "initial %s, multiplier %g, max %s, jitter %g (%s)", b.Initial, b.Multiplier, b.Max, b.Jitter, whose)
		label := "delays"
		if d.Action != policy.Retry {
			label = "fallback"
		}
		line(label, "%s", strings.Join(d.Delays, ", "))
	}
	scope := string(d.Scope)
	if scope == "" {
		scope = "job (this job only)"
	}
	line("scope", "%s", scope)
	line("source", "%s", policySource(d.Source))
	return nil
}

func policyShow(env *Env, args []string) error {
	fs := newFlags(env, "policy show", "[--policy FILE] [--json]")
	file := fs.String("policy", "", "policy file (default $WAQ_POLICY_FILE, else the built-in table)")
	asJSON := fs.Bool("json", false, "print one JSON object per rule")
	pos, err := interspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("show takes no arguments")
	}
	p, err := policyLoad(env, *file)
	if err != nil {
		return err
	}
	rules := p.Rules()
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		for _, r := range rules {
			if err := enc.Encode(policyDescribe(p, r)); err != nil {
				return err
			}
		}
		return nil
	}
	maxAttempts, b := p.Defaults()
	if p.Name() == "" {
		fmt.Fprintln(env.Stdout, "policy: the default table")
	} else {
		fmt.Fprintf(env.Stdout, "policy: %s (%d %s over the default table; a later rule wins)\n", p.Name(), p.FileRules(), policyPlural(p.FileRules(), "rule", "rules"))
	}
	api := ""
	if p.API() != "" {
		api = ", api " + p.API() + " (template jobs whose job and number name none)"
	}
	fmt.Fprintf(env.Stdout, "defaults: max_attempts %d, max_sends %d, backoff initial %s, multiplier %g, max %s, jitter %g%s\n\n",
		maxAttempts, p.MaxSends(), policy.FormatDuration(b.Initial), b.Multiplier, policy.FormatDuration(b.Max), b.Jitter, api)
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tACTION\tSCOPE\tREASON\tMAX\tBACKOFF\tMATCHES")
	for _, r := range rules {
		d := policyDescribe(p, r)
		scope, max, backoff := string(d.Scope), "-", "-"
		if scope == "" {
			scope = "-"
		}
		if d.Backoff != nil {
			max = strconv.Itoa(d.MaxAttempts)
			backoff = fmt.Sprintf("%s x%g max %s ±%g", d.Backoff.Initial, d.Backoff.Multiplier, d.Backoff.Max, d.Backoff.Jitter)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Source, d.Action, scope, d.Reason, max, backoff, d.Matches)
	}
	return tw.Flush()
}
