package policy

import "time"

// Default returns the built-in policy: SPEC Appendix A, from Meta's
// published error codes (developers.facebook.com/documentation/
// business-messaging/whatsapp/support/error-codes). Each call returns a new
// Policy.
func Default() *Policy {
	rules := defaultRules()
	return newPolicy("", rules, 0, DefaultMaxAttempts, DefaultMaxSends, defaultBackoff)
}

// defaultRules is Appendix A, one Rule per action and scope. The one-line
// comments give what Meta's error-codes page says of each code.
func defaultRules() []*Rule {
	// 131000's row carries its backoff rather than using the policy's, so
	// that a file that shortens defaults.backoff does not shorten it too:
	// Meta's troubleshooting guide asks for at least 30 s before the first
	// retry, and Backoff.Delay never goes below Initial.
	meta131000 := Backoff{Initial: 30 * time.Second, Multiplier: 2, Max: 15 * time.Minute, Jitter: 0.2}
	// Maintenance is over in minutes, not seconds: start at a minute.
	maintenance := Backoff{Initial: time.Minute, Multiplier: 2, Max: 15 * time.Minute, Jitter: 0.2}

	rules := []*Rule{
		// Transient: send again.
		{Codes: []int{
			131000, // Something went wrong: message failed to send due to an unknown error (HTTP 500).
		}, Action: Retry, Reason: ReasonRetriesExhausted, Backoff: &meta131000},
		{Codes: []int{
			1,      // API Unknown: invalid request or possible server error.
			2,      // API Service: temporary, due to downtime or overload (HTTP 503).
			131016, // Service unavailable: a service is temporarily unavailable.
			133004, // Server temporarily unavailable (HTTP 503).
		}, Action: Retry, Reason: ReasonRetriesExhausted},
		{Codes: []int{
			131057,  // Account in maintenance mode: the business account is in maintenance mode.
			2494100, // Account or number in maintenance mode (HTTP 503).
		}, Action: Retry, Reason: ReasonRetriesExhausted, Backoff: &maintenance},
		// Answers without a code: a server error page, an empty 503.
		{HTTPRanges: []Range{{500, 599}}, Action: Retry, Reason: ReasonRetriesExhausted},
		// No usable answer: timeout, refused, not JSON, cut, too large.
		{Transport: true, Action: Retry, Reason: ReasonRetriesExhausted},

		// Rate limits (SPEC §3.1).
		{Codes: []int{
			130429, // Rate limit hit: Cloud API message throughput (per business phone number) has been reached.
		}, Action: Throttle, Reason: ReasonRetriesExhausted, Scope: ScopeNumber},
		{Codes: []int{
			131056, // (Business Account, Consumer Account) pair rate limit hit: too many messages from this number to the same recipient in a short time.
		}, Action: Throttle, Reason: ReasonRetriesExhausted, Scope: ScopeRecipient},
		{Codes: []int{
			4, // API Too Many Calls: the app has reached its API call rate limit.
		}, Action: Throttle, Reason: ReasonRetriesExhausted, Scope: ScopeApp},
		{Codes: []int{
			80007, // Rate limit issues: the WhatsApp Business Account has reached its rate limit.
		}, Action: Throttle, Reason: ReasonRetriesExhausted, Scope: ScopeWABA},

		// The job cannot succeed as it is.
		{Codes: []int{
			131047, // Re-engagement message: more than 24 hours since the recipient last replied; send a template instead.
		}, Action: Park, Reason: ReasonWindow},
		{Codes: []int{
			132000, // Template param count mismatch: the number of parameters does not match the template.
			132001, // Template does not exist: in that language, or not approved.
			132005, // Template hydrated text too long: the text with its parameters filled in is too long.
			132007, // Template format character policy violated.
			132012, // Template parameter format mismatch.
			132018, // Template parameters: there is an issue with the parameters.
			132068, // Flow is in blocked state.
			132069, // Flow is in throttled state: too many messages with this flow in the last hour.
		}, Action: Park, Reason: ReasonTemplate},
		// A paused template comes back (Meta unpauses it after hours, or the
		// business edits it): hold its jobs, not every job of the number,
		// until a webhook says APPROVED or a later try goes through; past
		// WAQ_TEMPLATE_HOLD_MAX they are parked as template.
		{Codes: []int{
			132015, // Template is paused for low quality.
			132016, // Template is disabled: paused too many times for low quality.
		}, Action: Pause, Reason: ReasonTemplate, Scope: ScopeTemplate},
		{Codes: []int{
			131026, // Message undeliverable: not on WhatsApp, old app, terms not accepted, and kin.
			130472, // User's number is part of an experiment: not sent as part of a marketing message experiment.
			130497, // Business account is restricted from messaging users in this country.
			131049, // Meta chose not to deliver: held to keep the recipient's experience healthy (marketing limits).
			131050, // User stopped marketing messages from this business.
		}, Action: Park, Reason: ReasonUndeliverable},
		{Codes: []int{
			100,    // Invalid parameter: the request has an unsupported or misspelled parameter.
			131008, // Required parameter is missing.
			131009, // Parameter value is not valid.
			131021, // Recipient cannot be sender.
			131030, // Recipient phone number not in the allowed list (a test number's recipients).
			131051, // Unsupported message type.
			131053, // Media upload error: the media could not be uploaded or is not supported.
			131055, // Method not allowed.
			131062, // Business-scoped user ID not supported for this message (e.g. authentication templates).
			135000, // Generic user error: unknown error with the request parameters.
		}, Action: Park, Reason: ReasonInvalid},

		// Credentials: every number that sends with the same token would
		// fail alike, so pause them all, not one number.
		{Codes: []int{
			0,      // AuthException: unable to authenticate the app user (token expired, invalidated, or apps blocked).
			3,      // API Method: capability or permissions issue.
			10,     // Permission Denied: permission is either not granted or has been removed.
			190,    // Access token has expired.
			131005, // Access denied: permission is either not granted or has been removed.
		}, CodeRanges: []Range{
			{200, 299}, // API Permission: permission is either not granted or has been removed.
		}, Action: Pause, Reason: ReasonAccount, Scope: ScopeToken},
		// The business phone number itself cannot send.
		{Codes: []int{
			33,     // Parameter value is not valid: the business phone number has been deleted.
			131037, // The WhatsApp-provided number needs display name approval before messages can be sent.
			131045, // Incorrect certificate: message failed to send due to a phone number registration error.
			131048, // Spam rate limit hit: restrictions on how many messages this phone number can send (too many blocked or flagged as spam).
			133010, // Phone number not registered on the WhatsApp Business Platform.
		}, Action: Pause, Reason: ReasonAccount, Scope: ScopeNumber},
		// The WhatsApp Business Account: every number in it is affected.
		{Codes: []int{
			368,    // Temporarily blocked for policies violations: the WABA is restricted or disabled for violating a platform policy.
			131031, // Account has been locked: the WABA is restricted or disabled for a policy violation, or request data failed verification (e.g. a wrong two-step PIN).
			131042, // Business eligibility payment issue: there was an error related to your payment method.
			131064, // Messaging limit reached for the account because of template category enforcement; applies to the whole WABA.
		}, Action: Pause, Reason: ReasonAccount, Scope: ScopeWABA},
	}
	for _, r := range rules {
		r.Source = SourceDefault
	}
	return rules
}
