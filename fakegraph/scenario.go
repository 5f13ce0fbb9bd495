package fakegraph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/waqhq/waq/internal/yamlfile"
)

// Scenario scripts how the simulator behaves beyond a plain success. Its
// zero value accepts every well-formed send at once. It is read from YAML
// or JSON (DecodeScenario) and replaced or extended over the control API.
type Scenario struct {
	// Latency delays every answer of the messages endpoint.
	Latency Latency `yaml:"latency,omitempty" json:"latency,omitzero"`
	// Tokens are access tokens with an expiry or scopes of their own. With
	// no tokens here nor in Config.Tokens, any non-empty token is accepted.
	Tokens []Token `yaml:"tokens,omitempty" json:"tokens,omitempty"`
	// Random fails a share of sends, globally or for one phone number.
	Random []RandomFailure `yaml:"random,omitempty" json:"random,omitempty"`
	// Rules are scripted answers; the first rule that matches a send (and
	// has sends left) answers it, before Random and the simulated limits.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`
	// PhoneNumbers is the phone-number registry. When it is not empty, a
	// send from a number it does not list fails like Meta's answer for an
	// unknown object (code 100, subcode 33).
	PhoneNumbers []PhoneNumber `yaml:"phone_numbers,omitempty" json:"phone_numbers,omitempty"`
	// Templates are the message templates that exist. When it is not empty,
	// a template send is checked against it (132001, 132015, 132016, 132000).
	Templates []Template `yaml:"templates,omitempty" json:"templates,omitempty"`
	// Limits are Meta's throughput limits; each is off unless enabled.
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitzero"`
	// Window is the 24-hour customer service window; off unless enforced.
	Window Window `yaml:"window,omitempty" json:"window,omitzero"`
	// Webhooks configures status webhooks; off without a URL.
	Webhooks Webhooks `yaml:"webhooks,omitempty" json:"webhooks,omitzero"`
	// App is the app debug_token reports.
	App App `yaml:"app,omitempty" json:"app,omitzero"`
}

// Latency is a delay of base plus a uniform random share of jitter.
type Latency struct {
	Base   Duration `yaml:"base,omitempty" json:"base,omitzero"`
	Jitter Duration `yaml:"jitter,omitempty" json:"jitter,omitzero"`
}

// Token is an access token the simulator knows.
type Token struct {
	Token string `yaml:"token" json:"token"`
	// ExpiresAt makes the token expire (190, subcode 463) at that time;
	// nil never expires, as a system user's token does not.
	ExpiresAt *time.Time `yaml:"expires_at,omitempty" json:"expires_at,omitempty"`
	// Scopes debug_token reports. Defaults to whatsapp_business_messaging
	// and whatsapp_business_management.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
}

// RandomFailure answers a share Rate (0 to 1) of sends with Respond.
type RandomFailure struct {
	Rate float64 `yaml:"rate" json:"rate"`
	// PhoneNumberID limits the failure to one business number.
	PhoneNumberID string   `yaml:"phone_number_id,omitempty" json:"phone_number_id,omitempty"`
	Respond       Response `yaml:"respond" json:"respond"`
}

// Rule is a scripted answer: the sends that Match, Times times (0: every
// time), get Respond.
type Rule struct {
	// Name shows in the sends log and stats; defaults to "rule-N".
	Name    string   `yaml:"name,omitempty" json:"name,omitempty"`
	Match   Match    `yaml:"match,omitempty" json:"match,omitzero"`
	Times   int      `yaml:"times,omitempty" json:"times,omitempty"`
	Respond Response `yaml:"respond" json:"respond"`
}

// Match selects sends; empty fields match anything, all set fields must
// match.
type Match struct {
	To            string `yaml:"to,omitempty" json:"to,omitempty"`
	PhoneNumberID string `yaml:"phone_number_id,omitempty" json:"phone_number_id,omitempty"`
	Template      string `yaml:"template,omitempty" json:"template,omitempty"`
	JobID         string `yaml:"job_id,omitempty" json:"job_id,omitempty"`
	// Type is the message type: text, template, image, ...
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
}

// Kind is how the simulator answers.
type Kind string

// The answer kinds. Only KindAccept, KindSlow and KindError answer like the
// Graph API; the others are what a proxy, a load balancer or a broken
// network make of an answer.
const (
	KindAccept Kind = "accept" // Meta's success answer
	KindError  Kind = "error"  // Meta's error body for Response.Error
	KindSlow   Kind = "slow"   // success after Response.Delay (default 5s)
	KindHTML   Kind = "html"   // an HTML error page (default 502)
	KindCut    Kind = "cut"    // Content-Length larger than the body, then the connection closes
	KindHuge   Kind = "huge"   // a valid but huge JSON body (default 5 MiB)
	KindNoCode Kind = "nocode" // a JSON error object without a code (default 500)
	KindRaw    Kind = "raw"    // Response.Body as given, with Response.Status and ContentType
	KindHang   Kind = "hang"   // no answer until the client gives up
	KindDrop   Kind = "drop"   // the connection closes without an answer
)

var kinds = []Kind{KindAccept, KindError, KindSlow, KindHTML, KindCut, KindHuge, KindNoCode, KindRaw, KindHang, KindDrop}

// Response is one answer.
type Response struct {
	// Kind defaults to error when Error is set, raw when Body is set, and
	// accept otherwise.
	Kind Kind `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Error is the Graph API error code (0 is a real code).
	Error *int `yaml:"error,omitempty" json:"error,omitempty"`
	// Subcode overrides the code's error_subcode; -1 leaves it out.
	Subcode int `yaml:"subcode,omitempty" json:"subcode,omitempty"`
	// Status overrides the HTTP status.
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// Message, Details, Title and Type override error.message,
	// error.error_data.details, error.error_user_title and error.type.
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
	Details string `yaml:"details,omitempty" json:"details,omitempty"`
	Title   string `yaml:"title,omitempty" json:"title,omitempty"`
	Type    string `yaml:"type,omitempty" json:"type,omitempty"`
	// Delay is added before the answer, whatever its kind.
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitzero"`
	// Size is the body size of a huge answer in bytes; defaults to 5 MiB.
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Body and ContentType are the answer of kind raw (and replace the
	// page of kind html).
	Body        string `yaml:"body,omitempty" json:"body,omitempty"`
	ContentType string `yaml:"content_type,omitempty" json:"content_type,omitempty"`
	// RegainAccess is, for error 80007, the estimated_time_to_regain_access
	// of the X-Business-Use-Case-Usage header, in whole minutes (rounded
	// up). Defaults to 1m. Error 4 carries X-App-Usage at 100%, which gives
	// no time, as Meta's does not.
	RegainAccess Duration `yaml:"regain_access,omitempty" json:"regain_access,omitzero"`
	// Async makes an accepted send fail later, in a status webhook.
	Async *AsyncFailure `yaml:"async,omitempty" json:"async,omitempty"`
}

// AsyncFailure is a failure reported by webhook after Meta accepted a send.
type AsyncFailure struct {
	// Error is the code in statuses[].errors[]; defaults to 131000.
	Error *int `yaml:"error,omitempty" json:"error,omitempty"`
	// Details overrides errors[].error_data.details.
	Details string `yaml:"details,omitempty" json:"details,omitempty"`
	// After says which statuses are delivered before the failure
	// (for example [sent]); defaults to none.
	After []string `yaml:"after,omitempty" json:"after,omitempty"`
}

// PhoneNumber is a business phone number of the registry.
type PhoneNumber struct {
	PhoneNumberID string `yaml:"phone_number_id" json:"phone_number_id"`
	// WABAID defaults to Scenario's default WABA, DefaultWABAID.
	WABAID string `yaml:"waba_id,omitempty" json:"waba_id,omitempty"`
	// DisplayPhoneNumber defaults to "+1 555-0100-<last 4 digits of the id>".
	DisplayPhoneNumber string `yaml:"display_phone_number,omitempty" json:"display_phone_number,omitempty"`
	// VerifiedName defaults to "waq Test Business".
	VerifiedName string `yaml:"verified_name,omitempty" json:"verified_name,omitempty"`
	// QualityRating is GREEN (default), YELLOW, RED or UNKNOWN.
	QualityRating string `yaml:"quality_rating,omitempty" json:"quality_rating,omitempty"`
	// Status is CONNECTED (default), DISCONNECTED, FLAGGED, RESTRICTED,
	// RATE_LIMITED, PENDING, BANNED, DELETED, ...
	Status string `yaml:"status,omitempty" json:"status,omitempty"`
	// CodeVerificationStatus defaults to VERIFIED.
	CodeVerificationStatus string `yaml:"code_verification_status,omitempty" json:"code_verification_status,omitempty"`
	// NameStatus defaults to APPROVED.
	NameStatus string `yaml:"name_status,omitempty" json:"name_status,omitempty"`
	// ThroughputLevel defaults to STANDARD (HIGH when MPS is above 80).
	ThroughputLevel string `yaml:"throughput_level,omitempty" json:"throughput_level,omitempty"`
	// MessagingLimitTier defaults to TIER_1K.
	MessagingLimitTier string `yaml:"messaging_limit_tier,omitempty" json:"messaging_limit_tier,omitempty"`
	// MPS is the number's message rate limit; defaults to Limits.Throughput.MPS.
	MPS int `yaml:"mps,omitempty" json:"mps,omitempty"`
	// Locked makes every send from the number fail with 131031.
	Locked bool `yaml:"locked,omitempty" json:"locked,omitempty"`
}

// Template is a message template that exists, in one language.
type Template struct {
	Name string `yaml:"name" json:"name"`
	// Language is one language code; Languages several (one template each).
	Language  string   `yaml:"language,omitempty" json:"language,omitempty"`
	Languages []string `yaml:"languages,omitempty" json:"languages,omitempty"`
	// Status is APPROVED (default), PAUSED, DISABLED, REJECTED or PENDING.
	Status string `yaml:"status,omitempty" json:"status,omitempty"`
	// Category is UTILITY (default), MARKETING or AUTHENTICATION.
	Category string `yaml:"category,omitempty" json:"category,omitempty"`
	// WABAID limits the template to one WABA; empty exists in all.
	WABAID string `yaml:"waba_id,omitempty" json:"waba_id,omitempty"`
	// BodyParams is the number of variables of the body; a send with a
	// different number fails with 132000.
	BodyParams int `yaml:"body_params,omitempty" json:"body_params,omitempty"`
	// Body is the body text; defaults to one built from BodyParams.
	Body string `yaml:"body,omitempty" json:"body,omitempty"`
}

// Limits are Meta's throughput limits.
type Limits struct {
	Throughput Throughput `yaml:"throughput,omitempty" json:"throughput,omitzero"`
	Pair       PairLimit  `yaml:"pair,omitempty" json:"pair,omitzero"`
	// App is the app's call limit (code 4, X-App-Usage).
	App CallLimit `yaml:"app,omitempty" json:"app,omitzero"`
	// WABA is each WABA's call limit (code 80007, X-Business-Use-Case-Usage).
	WABA CallLimit `yaml:"waba,omitempty" json:"waba,omitzero"`
	// UsageHeaders sends X-App-Usage and X-Business-Use-Case-Usage on every
	// answer of the messages endpoint, not only on limit errors.
	UsageHeaders bool `yaml:"usage_headers,omitempty" json:"usage_headers,omitempty"`
}

// Throughput is the per-number message rate limit (130429).
type Throughput struct {
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// MPS defaults to 80 messages per second; PhoneNumber.MPS overrides it.
	MPS int `yaml:"mps,omitempty" json:"mps,omitempty"`
	// Burst is how many sends may come at once; defaults to a quarter of
	// a second's worth (20 at 80 mps).
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
}

// PairLimit limits one business number to one recipient (131056).
type PairLimit struct {
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Every is the steady pace; defaults to 6s.
	Every Duration `yaml:"every,omitempty" json:"every,omitzero"`
	// Burst is how many messages may go at once; defaults to 3.
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
}

// CallLimit allows Calls calls per fixed window Per.
type CallLimit struct {
	// Calls is the budget; 0 disables the limit.
	Calls int `yaml:"calls,omitempty" json:"calls,omitempty"`
	// Per defaults to 1h.
	Per Duration `yaml:"per,omitempty" json:"per,omitzero"`
}

// Window is the 24-hour customer service window.
type Window struct {
	// Enforce fails free-form messages (not templates) to a recipient
	// whose window is closed with 131047.
	Enforce bool `yaml:"enforce,omitempty" json:"enforce,omitempty"`
	// Async accepts such a message and reports 131047 in a failed status
	// webhook, as the Cloud API mostly does, instead of answering 131047 at
	// once. It needs a webhook URL; without one the answer stays synchronous.
	Async bool `yaml:"async,omitempty" json:"async,omitempty"`
	// Duration defaults to 24h.
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitzero"`
	// Open are windows open when the scenario is installed, as if each
	// recipient had just written.
	Open []OpenWindow `yaml:"open,omitempty" json:"open,omitempty"`
}

// OpenWindow is an inbound message: it opens To's window with one business
// number (PhoneNumberID) or, left empty, with all.
type OpenWindow struct {
	To            string `yaml:"to" json:"to"`
	PhoneNumberID string `yaml:"phone_number_id,omitempty" json:"phone_number_id,omitempty"`
}

// Webhooks configures the status webhooks of accepted sends.
type Webhooks struct {
	// URL receives the webhooks; it overrides Config.WebhookURL.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// AppSecret signs them (X-Hub-Signature-256); overrides Config.AppSecret.
	AppSecret string `yaml:"app_secret,omitempty" json:"app_secret,omitempty"`
	// Statuses sent for an accepted message, in order; defaults to
	// [sent, delivered]. A failure from Response.Async replaces them.
	Statuses []string `yaml:"statuses,omitempty" json:"statuses,omitempty"`
	// Delay is waited before each status; defaults to 0.
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitzero"`
	// DuplicateRate is the share of webhooks delivered more than once.
	DuplicateRate float64 `yaml:"duplicate_rate,omitempty" json:"duplicate_rate,omitempty"`
	// Duplicates is how many extra copies a duplicated webhook gets;
	// defaults to 1.
	Duplicates int `yaml:"duplicates,omitempty" json:"duplicates,omitempty"`
	// ReorderRate is the share of messages whose statuses arrive in
	// reverse order (delivered before sent).
	ReorderRate float64 `yaml:"reorder_rate,omitempty" json:"reorder_rate,omitempty"`
	// Retries bounds the redeliveries of a webhook the receiver did not
	// answer with 200; defaults to 3. -1 disables retries.
	Retries int `yaml:"retries,omitempty" json:"retries,omitempty"`
	// RetryBackoff is the first wait before a redelivery, doubled each
	// time; defaults to 200ms.
	RetryBackoff Duration `yaml:"retry_backoff,omitempty" json:"retry_backoff,omitzero"`
	// Timeout bounds one delivery; defaults to 5s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitzero"`
}

// App is the app that owns the tokens.
type App struct {
	// ID defaults to DefaultAppID.
	ID string `yaml:"id,omitempty" json:"id,omitempty"`
	// Name defaults to "waq fakegraph".
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
}

// Defaults of the registry and of debug_token.
const (
	DefaultWABAID = "102290129340398"
	DefaultAppID  = "1234567890123456"
)

// Duration is a time.Duration written as "250ms", "6s", "24h" in YAML and
// JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// IsZero reports whether d is zero, for omitzero.
func (d Duration) IsZero() bool { return d == 0 }

// String is d as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string: "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "1.5s" (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: want a string like \"250ms\", got %s", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads "250ms", "6s", "24h" (0 alone is allowed too).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &lineError{line: n.Line, msg: "duration: want a string like \"250ms\""}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &lineError{line: n.Line, msg: err.Error()}
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a number with a unit, like 250ms, 6s or 24h", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q: must not be negative", s)
	}
	return Duration(v), nil
}

// ScenarioError is a scenario that does not decode or does not make sense,
// with the file and line where YAML gives them.
type ScenarioError struct {
	File string // "" when the scenario came over the control API
	Line int    // 0 when unknown
	Msg  string
}

func (e *ScenarioError) Error() string {
	var b strings.Builder
	b.WriteString("scenario")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// lineError is an error of a custom unmarshaler that knows its line.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return "line " + strconv.Itoa(e.line) + ": " + e.msg }

// maxScenario bounds a scenario's size; a bigger one is a mistake.
const maxScenario = 4 << 20

// LoadScenario reads and decodes the scenario file at path.
func LoadScenario(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	return DecodeScenario(f, path)
}

// DecodeScenario decodes and validates a scenario in YAML or JSON (JSON is
// YAML too). Unknown keys are errors. name is the file name used in errors
// ("" for none). An empty input is the empty scenario.
func DecodeScenario(r io.Reader, name string) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxScenario+1))
	if err != nil {
		return nil, &ScenarioError{File: name, Msg: "read: " + err.Error()}
	}
	if len(data) > maxScenario {
		return nil, &ScenarioError{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxScenario)}
	}
	var s Scenario
	var root yaml.Node
	if len(bytes.TrimSpace(data)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(name, err)
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			line := extra.Line
			return nil, &ScenarioError{File: name, Line: line, Msg: "more than one YAML document"}
		}
		// The same bytes as a node tree, to find the line of a field that
		// decoded but makes no sense.
		_ = yaml.Unmarshal(data, &root)
	}
	if err := s.validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, &ScenarioError{File: name, Line: lineOf(&root, fe.path), Msg: fe.Error()}
		}
		return nil, &ScenarioError{File: name, Msg: err.Error()}
	}
	return &s, nil
}

// yamlError turns a yaml.v3 error into a ScenarioError with its line.
func yamlError(name string, err error) error {
	var le *lineError
	if errors.As(err, &le) {
		return &ScenarioError{File: name, Line: le.line, Msg: le.msg}
	}
	line, problem := yamlfile.Problem(err, nil)
	return &ScenarioError{File: name, Line: line, Msg: problem}
}

// fieldError is a validation error at a path of the scenario.
type fieldError struct {
	path []any // string keys and int indexes
	msg  string
}

func (e *fieldError) Error() string {
	var b strings.Builder
	for i, p := range e.path {
		switch p := p.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			b.WriteString("[" + strconv.Itoa(p) + "]")
		}
	}
	return b.String() + ": " + e.msg
}

func errAt(msg string, path ...any) error { return &fieldError{path: path, msg: msg} }

// lineOf finds the line of path in a YAML document, or the line of the
// deepest part of it that exists.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

var (
	qualityRatings = []string{"GREEN", "YELLOW", "RED", "UNKNOWN", "NA"}
	templateStates = []string{"APPROVED", "PAUSED", "DISABLED", "REJECTED", "PENDING", "IN_APPEAL", "PENDING_DELETION", "DELETED", "LIMIT_EXCEEDED"}
	statusNames    = []string{"sent", "delivered", "read"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// validate checks what decoding cannot: values that make no sense together.
func (s *Scenario) validate() error {
	if s.Latency.Jitter < 0 || s.Latency.Base < 0 {
		return errAt("must not be negative", "latency")
	}
	for i, t := range s.Tokens {
		if t.Token == "" {
			return errAt("token must not be empty", "tokens", i, "token")
		}
	}
	for i, f := range s.Random {
		if f.Rate < 0 || f.Rate > 1 {
			return errAt(fmt.Sprintf("rate %v: want a share between 0 and 1", f.Rate), "random", i, "rate")
		}
		if err := f.Respond.validate("random", i, "respond"); err != nil {
			return err
		}
	}
	for i, r := range s.Rules {
		if r.Times < 0 {
			return errAt("times must not be negative (0 means always)", "rules", i, "times")
		}
		if err := r.Respond.validate("rules", i, "respond"); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, p := range s.PhoneNumbers {
		if p.PhoneNumberID == "" {
			return errAt("phone_number_id must not be empty", "phone_numbers", i)
		}
		if seen[p.PhoneNumberID] {
			return errAt("phone number "+p.PhoneNumberID+" listed twice", "phone_numbers", i, "phone_number_id")
		}
		seen[p.PhoneNumberID] = true
		if p.QualityRating != "" && !oneOf(p.QualityRating, qualityRatings) {
			return errAt("quality_rating "+p.QualityRating+": want GREEN, YELLOW, RED or UNKNOWN", "phone_numbers", i, "quality_rating")
		}
		if p.MPS < 0 {
			return errAt("mps must not be negative", "phone_numbers", i, "mps")
		}
	}
	for i, t := range s.Templates {
		if t.Name == "" {
			return errAt("name must not be empty", "templates", i)
		}
		if t.Language == "" && len(t.Languages) == 0 {
			return errAt("template "+t.Name+" needs a language or languages", "templates", i)
		}
		if t.Status != "" && !oneOf(t.Status, templateStates) {
			return errAt("status "+t.Status+": want APPROVED, PAUSED, DISABLED, REJECTED or PENDING", "templates", i, "status")
		}
		if t.BodyParams < 0 {
			return errAt("body_params must not be negative", "templates", i, "body_params")
		}
	}
	l := s.Limits
	if l.Throughput.MPS < 0 || l.Throughput.Burst < 0 {
		return errAt("mps and burst must not be negative", "limits", "throughput")
	}
	if l.Pair.Burst < 0 {
		return errAt("burst must not be negative", "limits", "pair", "burst")
	}
	if l.App.Calls < 0 {
		return errAt("calls must not be negative", "limits", "app", "calls")
	}
	if l.WABA.Calls < 0 {
		return errAt("calls must not be negative", "limits", "waba", "calls")
	}
	for i, o := range s.Window.Open {
		if o.To == "" {
			return errAt("to must not be empty", "window", "open", i)
		}
	}
	w := s.Webhooks
	for i, st := range w.Statuses {
		if !oneOf(st, statusNames) {
			return errAt("status "+st+": want sent, delivered or read", "webhooks", "statuses", i)
		}
	}
	if w.DuplicateRate < 0 || w.DuplicateRate > 1 {
		return errAt("want a share between 0 and 1", "webhooks", "duplicate_rate")
	}
	if w.ReorderRate < 0 || w.ReorderRate > 1 {
		return errAt("want a share between 0 and 1", "webhooks", "reorder_rate")
	}
	if w.Duplicates < 0 || w.Duplicates > 100 {
		return errAt("want 0 to 100", "webhooks", "duplicates")
	}
	if w.Retries < -1 || w.Retries > 100 {
		return errAt("want -1 (none) to 100", "webhooks", "retries")
	}
	if w.URL != "" && !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
		return errAt("want an http(s) URL", "webhooks", "url")
	}
	return nil
}

// maxHuge bounds a huge answer: large enough to pass any sane read bound,
// small enough not to exhaust the machine.
const maxHuge = 256 << 20

func (r *Response) validate(path ...any) error {
	at := func(msg string, field string) error {
		p := append(append([]any{}, path...), field)
		return errAt(msg, p...)
	}
	if r.Kind != "" && !oneOf(string(r.Kind), kindNames()) {
		return at("kind "+strconv.Quote(string(r.Kind))+": want one of "+strings.Join(kindNames(), ", "), "kind")
	}
	k := r.kind()
	if k == KindError && r.Error == nil {
		return at("kind error needs an error code", "kind")
	}
	if r.Error != nil && *r.Error < 0 {
		return at("error code must not be negative", "error")
	}
	if r.Error != nil && k != KindError {
		return at("error code given with kind "+string(k), "error")
	}
	if r.Status != 0 && (r.Status < 100 || r.Status > 599) {
		return at(fmt.Sprintf("status %d: want an HTTP status", r.Status), "status")
	}
	if r.Size < 0 || r.Size > maxHuge {
		return at(fmt.Sprintf("size %d: want 0 to %d bytes", r.Size, maxHuge), "size")
	}
	if r.Delay < 0 {
		return at("delay must not be negative", "delay")
	}
	if r.Async != nil {
		if k != KindAccept && k != KindSlow {
			return at("async failures need an accepted send (kind accept or slow)", "async")
		}
		if r.Async.Error != nil && *r.Async.Error < 0 {
			return at("error code must not be negative", "async")
		}
		for _, st := range r.Async.After {
			if !oneOf(st, statusNames) {
				return at("after: status "+st+": want sent, delivered or read", "async")
			}
		}
	}
	return nil
}

func kindNames() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// kind is the effective kind of r.
func (r *Response) kind() Kind {
	switch {
	case r.Kind != "":
		return r.Kind
	case r.Error != nil:
		return KindError
	case r.Body != "":
		return KindRaw
	default:
		return KindAccept
	}
}

// clone copies the scenario's lists, so that the caller's later changes do
// not reach a running server.
func (s *Scenario) clone() Scenario {
	c := *s
	c.Tokens = slices.Clone(s.Tokens)
	c.Random = slices.Clone(s.Random)
	c.Rules = slices.Clone(s.Rules)
	c.PhoneNumbers = slices.Clone(s.PhoneNumbers)
	c.Templates = slices.Clone(s.Templates)
	c.Window.Open = slices.Clone(s.Window.Open)
	c.Webhooks.Statuses = slices.Clone(s.Webhooks.Statuses)
	return c
}

// Code returns a pointer to code, for Response.Error and AsyncFailure.Error.
func Code(code int) *int { return &code }
