// Package doctor runs Meta's 131000 troubleshooting guide as a program:
// does the Graph API answer, is the token valid with the right permissions,
// is the phone number connected and its quality not red, does the template
// exist, approved, in that language, is the recipient well formed, are
// recent failures isolated or broad; what the workers hold for Meta's
// account webhooks (templates paused, RED, numbers flagged, accounts
// restricted); and, beside the guide, are JetStream and
// Redis configured not to lose what they acknowledged (SPEC §2).
//
// Each check is one Result: ok, warn or fail, what was found, and what to do.
package doctor

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
)

// Status is a check's verdict.
type Status string

// The verdicts.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check, as `waq doctor --json` prints it.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Hold is what a holds check found (holds.go); nil for the others.
	Hold *Hold `json:"hold,omitempty"`
	// DeadLetters is what the dead-letters check counted (deadletters.go);
	// nil for the others, and when the store could not be read.
	DeadLetters *DeadLetters `json:"dead_letters,omitempty"`
}

// Options say what to check. Zero values skip what needs them.
type Options struct {
	Graph   *graph.Client
	Numbers *numbers.Registry
	// PhoneNumberID, WABAID, Template, Language and To (a number) or
	// Recipient (a business-scoped user ID) are the optional subjects of
	// the guide's checks.
	PhoneNumberID, WABAID, Template, Language, To, Recipient string
	// Store is the dead-letter store; Since bounds "recent" (default 24h).
	Store *deadletter.Store
	Since time.Duration
	// NATS and Stream are the job stream's connection and name.
	NATS   *nats.Conn
	Stream string
	// NATSMonitorURL is the server's monitoring endpoint (http://host:8222),
	// to read its sync setting; "" derives it from the connected server.
	NATSMonitorURL string
	Redis          redis.UniversalClient
	// KeyPrefix prefixes the workers' Redis keys (WAQ_KEY_PREFIX; "" is
	// "waq"): the holds are read under it.
	KeyPrefix string
	// LowQualityMarketing and HoldMax are the workers' WAQ_LOW_QUALITY_MARKETING
	// and WAQ_TEMPLATE_HOLD_MAX, to say what a hold does ("" is hold, 0
	// leaves the hold's end unsaid).
	LowQualityMarketing string
	HoldMax             time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// HTTP reads the NATS monitoring endpoint. Defaults to a 5s client.
	HTTP *http.Client
}

// Run runs every check whose subject is given, in the guide's order.
func Run(ctx context.Context, o Options) []Result {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Since == 0 {
		o.Since = 24 * time.Hour
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	var out []Result
	add := func(r ...Result) { out = append(out, r...) }

	num, numErr := o.number()
	if o.Graph != nil {
		tok, dt, graphRes := o.checkGraph(ctx, num, numErr)
		add(graphRes)
		if tok != "" && dt != nil {
			add(o.checkToken(dt))
		}
		if o.PhoneNumberID != "" && numErr == nil && graphRes.Status != Fail {
			add(o.checkNumber(ctx, num))
		}
		if o.Template != "" && graphRes.Status != Fail {
			add(o.checkTemplate(ctx, num))
		}
	}
	if o.To != "" || o.Recipient != "" {
		add(checkRecipient(o.To, o.Recipient))
	}
	if o.Store != nil {
		add(o.checkDeadLetters(ctx))
	}
	if o.NATS != nil {
		add(o.checkJetStream(ctx)...)
	}
	if o.Redis != nil {
		add(o.checkRedis(ctx))
		add(o.checkHolds(ctx)...)
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	return slices.ContainsFunc(rs, func(r Result) bool { return r.Status == Fail })
}

// number is the phone number under test (with its token), or the default
// token's stand-in when none is named.
func (o Options) number() (numbers.Number, error) {
	if o.Numbers == nil {
		return numbers.Number{}, errors.New("no phone-number registry")
	}
	id := o.PhoneNumberID
	if id == "" {
		id = "0"
	}
	return o.Numbers.Lookup(id)
}
