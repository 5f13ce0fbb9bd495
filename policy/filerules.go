package policy

// The sections of a policy file: defaults and rules, built into a Policy
// over the default table.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/waqhq/waq/graph"
)

func reasonList() string { return strings.Join(reasons, ", ") }
func scopeList(s []Scope) string {
	names := make([]string, len(s))
	for i, x := range s {
		names[i] = string(x)
	}
	return strings.Join(names, ", ")
}

// policy builds the Policy from the root mapping.
func (ps *parser) policy(root *yaml.Node) (*Policy, error) {
	var defaultsNode, rulesNode *yaml.Node
	err := ps.fields(root, "", []string{"defaults", "rules"}, func(key string, _, v *yaml.Node) error {
		if key == "defaults" {
			defaultsNode = v
		} else {
			rulesNode = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	maxAttempts, maxSends, backoff := DefaultMaxAttempts, DefaultMaxSends, defaultBackoff
	var api string
	if defaultsNode != nil {
		var attemptsNode *yaml.Node
		err := ps.fields(defaultsNode, "defaults", []string{"max_attempts", "max_sends", "backoff", "api"}, func(key string, _, v *yaml.Node) error {
			var err error
			switch key {
			case "api":
				api, err = ps.apiValue(v, "defaults.api")
			case "max_attempts":
				attemptsNode = v
				maxAttempts, err = ps.intValue(v, "defaults.max_attempts", 1, maxCount)
			case "max_sends":
				maxSends, err = ps.intValue(v, "defaults.max_sends", 1, maxCount)
			case "backoff":
				backoff, err = ps.backoff(v, "defaults.backoff", defaultBackoff)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if maxAttempts > maxSends {
			at := defaultsNode
			if attemptsNode != nil {
				at = attemptsNode
			}
			return nil, ps.errf(at, "defaults.max_attempts", "%d is more than max_sends %d, which bounds every send of a job", maxAttempts, maxSends)
		}
	}

	rules := defaultRules()
	var fileRules []*Rule
	if rulesNode != nil {
		if rulesNode.Kind != yaml.SequenceNode {
			return nil, ps.errf(rulesNode, "rules", "is %s, expected a list of rules", describe(rulesNode))
		}
		for i, item := range rulesNode.Content {
			field := fmt.Sprintf("rules[%d]", i)
			item, err := ps.resolve(item, field)
			if err != nil {
				return nil, err
			}
			r, err := ps.rule(item, field, maxSends, backoff)
			if err != nil {
				return nil, err
			}
			fileRules = append(fileRules, r)
		}
	}
	p := newPolicy(ps.file, append(rules, fileRules...), len(fileRules), maxAttempts, maxSends, backoff)
	p.api = api
	return p, nil
}

// apiValue reads defaults.api: the endpoint of template jobs that name none
// and whose number names none either.
func (ps *parser) apiValue(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" ||
		(n.Value != graph.EdgeMessages && n.Value != graph.EdgeMarketingMessages) {
		return "", ps.errf(n, field, "%s is not one of %s, %s", describe(n), graph.EdgeMessages, graph.EdgeMarketingMessages)
	}
	return n.Value, nil
}

// rule reads one rule and checks that its keys make sense together.
func (ps *parser) rule(n *yaml.Node, field string, maxSends int, base Backoff) (*Rule, error) {
	r := &Rule{Source: ps.file + ":" + strconv.Itoa(n.Line)}
	var actionNode, reasonNode, scopeNode, attemptsNode, backoffNode, transportNode *yaml.Node
	keys := []string{"codes", "http_status", "transport", "action", "reason", "max_attempts", "backoff", "scope"}
	err := ps.fields(n, field, keys, func(key string, _, v *yaml.Node) error {
		f := join(field, key)
		var err error
		switch key {
		case "codes":
			r.Codes, r.CodeRanges, err = ps.matchList(v, f, 0, maxCode)
		case "http_status":
			r.HTTPStatus, r.HTTPRanges, err = ps.matchList(v, f, 100, 599)
		case "transport":
			transportNode = v
			var b bool
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
				return ps.errf(v, f, "%s is not true or false", describe(v))
			}
			r.Transport = b
		case "action":
			actionNode = v
			r.Action = Action(v.Value)
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || !r.Action.valid() {
				return ps.errf(v, f, "%s is not one of retry, throttle, park, pause", describe(v))
			}
		case "reason":
			reasonNode = v
			r.Reason = v.Value
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || !ValidReason(r.Reason) {
				return ps.errf(v, f, "%s is not one of %s", describe(v), reasonList())
			}
		case "scope":
			scopeNode = v
			r.Scope = Scope(v.Value)
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
				return ps.errf(v, f, "%s is not a scope", describe(v))
			}
		case "max_attempts":
			attemptsNode = v
			r.MaxAttempts, err = ps.intValue(v, f, 1, maxCount)
		case "backoff":
			backoffNode = v
			var b Backoff
			b, err = ps.backoff(v, f, base)
			r.Backoff = &b
		}
		return err
	})
	if err != nil {
		return nil, err
	}

	if actionNode == nil {
		return nil, ps.errf(n, field, "has no action (one of retry, throttle, park, pause)")
	}
	if len(r.Codes)+len(r.CodeRanges)+len(r.HTTPStatus)+len(r.HTTPRanges) == 0 && !r.Transport {
		if transportNode != nil {
			return nil, ps.errf(transportNode, field+".transport", "false matches nothing; give codes, http_status or transport: true")
		}
		return nil, ps.errf(n, field, "matches nothing; give codes, http_status or transport: true")
	}
	switch r.Action {
	case Park:
		if reasonNode == nil {
			return nil, ps.errf(n, field, "park needs a reason (one of %s)", reasonList())
		}
		if attemptsNode != nil {
			return nil, ps.errf(attemptsNode, field+".max_attempts", "does not apply to park, which never sends again")
		}
		if backoffNode != nil {
			return nil, ps.errf(backoffNode, field+".backoff", "does not apply to park, which never sends again")
		}
		if scopeNode != nil {
			return nil, ps.errf(scopeNode, field+".scope", "only throttle and pause take a scope")
		}
	case Retry:
		if scopeNode != nil {
			return nil, ps.errf(scopeNode, field+".scope", "only throttle and pause take a scope")
		}
		if r.MaxAttempts > maxSends {
			return nil, ps.errf(attemptsNode, field+".max_attempts", "%d is more than max_sends %d, which bounds every send of a job", r.MaxAttempts, maxSends)
		}
		if r.Reason == "" {
			r.Reason = ReasonRetriesExhausted
		}
	case Throttle, Pause:
		allowed, reason := throttleScopes, ReasonRetriesExhausted
		if r.Action == Pause {
			allowed, reason = pauseScopes, ReasonAccount
		}
		if r.Scope == ScopeJob {
			if scopeNode != nil {
				return nil, ps.errf(scopeNode, field+".scope", "%s is not one of %s (for %s)", describe(scopeNode), scopeList(allowed), r.Action)
			}
			r.Scope = allowed[0]
		}
		if !slices.Contains(allowed, r.Scope) {
			return nil, ps.errf(scopeNode, field+".scope", "%s is not one of %s (for %s)", quote(string(r.Scope)), scopeList(allowed), r.Action)
		}
		if r.Reason == "" {
			r.Reason = reason
		}
	}
	return r, nil
}
