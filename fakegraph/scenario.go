package fakegraph

import (
	"slices"
	"time"
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
	// AccountEvents are account webhooks (template status and quality,
	// number quality, account restrictions) sent by themselves a while
	// after the scenario is installed (scenario_account.go).
	AccountEvents []AccountEvent `yaml:"account_events,omitempty" json:"account_events,omitempty"`
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
	// ThroughputLevel is the phone number GET's throughput.level: STANDARD,
	// HIGH or NOT_APPLICABLE. Defaults to STANDARD (HIGH when MPS is above
	// 80). POST /_fake/numbers/{id}/throughput changes it while running.
	ThroughputLevel string `yaml:"throughput_level,omitempty" json:"throughput_level,omitempty"`
	// MessagingLimitTier defaults to TIER_1K.
	MessagingLimitTier string `yaml:"messaging_limit_tier,omitempty" json:"messaging_limit_tier,omitempty"`
	// MPS is the number's message rate limit; defaults to Limits.Throughput.MPS.
	MPS int `yaml:"mps,omitempty" json:"mps,omitempty"`
	// AllowedRecipients, when set, are the only recipients the number may
	// send to (phone numbers or BSUIDs), as with Meta's test numbers; others
	// fail with 131030.
	AllowedRecipients []string `yaml:"allowed_recipients,omitempty" json:"allowed_recipients,omitempty"`
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
	// a second's worth (20 at 80 mps). Not with Strict.
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Strict enforces MPS as a sliding one-second window instead of a
	// token bucket: at most MPS accepted sends of one number in any one
	// second, no burst. Meta documents no burst, so a sender must assume
	// none. Defaults to false (the bucket).
	Strict bool `yaml:"strict,omitempty" json:"strict,omitempty"`
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
	c.AccountEvents = slices.Clone(s.AccountEvents)
	return c
}
