package policy

import "strconv"

// Fit says whether a kind of replay can help a parked job.
type Fit string

// The fits of a replay.
const (
	// FitYes: the replay can succeed now.
	FitYes Fit = "yes"
	// FitAfterFix: the replay fails the same way until the operator has
	// done Advice.Next (a template approved, a token renewed).
	FitAfterFix Fit = "after_fix"
	// FitNo: the replay cannot help; the console does not offer it and the
	// CLI and admin API warn.
	FitNo Fit = "no"
)

// Advice is the next step for a parked job: what an operator can act on,
// from Meta's error-codes page and its 131000 troubleshooting guide. One
// table serves `waq dlq explain`, `stats`, `export`, the admin API and the
// console, so they never disagree.
type Advice struct {
	// Key is what the advice is for: the code ("132001", "200-299") or
	// "reason:<reason>" when no row names the code.
	Key string `json:"key"`
	// Title is Meta's name for the code, or the reason in words.
	Title string `json:"title"`
	// Next is the step to take, in one or two sentences.
	Next string `json:"next"`
	// Check is what to look at in WhatsApp Manager (or the app dashboard)
	// before acting; empty when there is nothing to look at.
	Check string `json:"check,omitempty"`
	// Ticket says when to open a Meta support ticket (Direct Support) with
	// `waq dlq export`; empty when support cannot help.
	Ticket string `json:"ticket,omitempty"`
	// AsIs and AsTemplate say whether a replay as published, or as a
	// template message (--as-template), can help.
	AsIs       Fit `json:"replay_as_is"`
	AsTemplate Fit `json:"replay_as_template"`
}

// ReplayWarning is what to tell an operator who replays with this advice
// ("" when the replay fits): asTemplate picks the kind of replay.
func (a Advice) ReplayWarning(asTemplate bool) string {
	fit, kind := a.AsIs, "a replay as published"
	if asTemplate {
		fit, kind = a.AsTemplate, "a replay as a template"
	}
	switch fit {
	case FitAfterFix:
		return kind + " fails the same way until this is done: " + a.Next
	case FitNo:
		return kind + " cannot help here (" + a.Title + "): " + a.Next
	}
	return ""
}

// Offers reports whether the console offers the replay at all.
func (a Advice) Offers(asTemplate bool) bool {
	if asTemplate {
		return a.AsTemplate != FitNo
	}
	return a.AsIs != FitNo
}

// AdviceFor returns the advice for a parked job: the row of its code when
// it has one that the table names, otherwise the row of its reason.
func AdviceFor(reason string, code int, hasCode bool) Advice {
	if hasCode {
		if a, ok := CodeAdvice(code); ok {
			return a
		}
	}
	return ReasonAdvice(reason)
}

// CodeAdvice returns the advice row of a Graph API error code.
func CodeAdvice(code int) (Advice, bool) {
	if code >= 200 && code <= 299 {
		a := adviceByCode[200]
		a.Key = "200-299"
		return a, true
	}
	a, ok := adviceByCode[code]
	if ok {
		a.Key = strconv.Itoa(code)
	}
	return a, ok
}

// ReasonAdvice returns the advice of a dead-letter reason; an unknown
// reason gets that of "unknown".
func ReasonAdvice(reason string) Advice {
	a, ok := adviceByReason[reason]
	if !ok {
		reason = ReasonUnknown
		a = adviceByReason[reason]
	}
	a.Key = "reason:" + reason
	return a
}

// AdviceCodes returns the codes the table has a row for (200 stands for
// 200-299), for tests and `waq policy show`.
func AdviceCodes() []int {
	out := make([]int, 0, len(adviceByCode))
	for c := range adviceByCode {
		out = append(out, c)
	}
	return out
}

// Words used by many rows.
const (
	checkStatus   = "The WhatsApp Business Platform status page (metastatus.com) for an incident; WhatsApp Manager › Phone numbers for the number's status."
	ticket131000  = "When it persists after the retries and `waq doctor` finds nothing wrong: open a Direct Support ticket with what `waq dlq export --code CODE` writes (fbtrace_ids, request payloads, first and last seen)."
	checkTemplate = "WhatsApp Manager › Message templates: the template's status (approved, paused, disabled), its languages and its parameters."
	checkToken    = "The access token in the Access Token Debugger (developers.facebook.com/tools/debug/accesstoken): valid, not expired, with whatsapp_business_messaging and whatsapp_business_management; `waq doctor` checks the same."
	checkNumber   = "WhatsApp Manager › Phone numbers: the number's status (connected), its display name, quality rating and messaging limit."
	checkAccount  = "Business Support Home and WhatsApp Manager › Overview: account restrictions, policy violations and their appeal."
	checkPayment  = "WhatsApp Manager › Settings › Payment methods (or Business Settings › Billing): a valid payment method, no overdue invoice."
	ticketAccount = "When WhatsApp Manager shows nothing to fix, or an appeal is not answered: open a ticket with `waq dlq export --reason account`."
	replayLater   = "Replay as published once it is fixed; the worker paused the number meanwhile, so no other job was lost."
)

var adviceByCode = map[int]Advice{
	// Transient: the worker retried; these are parked only once the
	// retries were spent.
	131000: {Title: "Something went wrong (unknown error, HTTP 500)",
		Next:  "Meta's 131000 guide: run `waq doctor --phone-number-id P --template T --language L --to N` (token, number, template, recipient); if it finds nothing and `waq dlq stats --code 131000` shows the failures are broad, it was Meta's side: replay as published.",
		Check: checkStatus, Ticket: ticket131000, AsIs: FitYes, AsTemplate: FitNo},
	1: {Title: "API Unknown: invalid request or possible server error",
		Next:  "Check the status page; if Meta had an incident, replay as published. If it happens to one job only, compare its body with one that was sent.",
		Check: checkStatus, Ticket: ticket131000, AsIs: FitYes, AsTemplate: FitNo},
	2: {Title: "API Service: temporary downtime or overload (HTTP 503)",
		Next:  "Wait for the status page to show the service back, then replay as published.",
		Check: checkStatus, Ticket: ticket131000, AsIs: FitYes, AsTemplate: FitNo},
	131016: {Title: "Service unavailable",
		Next:  "A Meta service was unavailable: wait for the status page to show it back, then replay as published.",
		Check: checkStatus, Ticket: ticket131000, AsIs: FitYes, AsTemplate: FitNo},
	133004: {Title: "Server temporarily unavailable (HTTP 503)",
		Next:  "Wait for the status page to show the service back, then replay as published.",
		Check: checkStatus, Ticket: ticket131000, AsIs: FitYes, AsTemplate: FitNo},
	131057: {Title: "Account in maintenance mode",
		Next:  "The business account was in maintenance (a throughput upgrade, for one): wait until WhatsApp Manager shows the number connected again, then replay as published.",
		Check: checkNumber, Ticket: "When the maintenance lasts more than a few hours.", AsIs: FitAfterFix, AsTemplate: FitNo},
	2494100: {Title: "Account or number in maintenance mode",
		Next:  "Wait until WhatsApp Manager shows the number connected again, then replay as published.",
		Check: checkNumber, Ticket: "When the maintenance lasts more than a few hours.", AsIs: FitAfterFix, AsTemplate: FitNo},

	// Rate limits: throttled, parked once max_sends was spent.
	130429: {Title: "Rate limit hit: the number's message throughput",
		Next:  "The number sent above its rate for too long: lower its `mps` in the phone-number file (80 by default; 1,000 only after Meta's upgrade), or spread the campaign; then replay as published.",
		Check: "WhatsApp Manager › Phone numbers › the number's throughput.", AsIs: FitYes, AsTemplate: FitNo},
	131056: {Title: "Pair rate limit hit: too many messages to one recipient",
		Next: "Too many messages to this one recipient in a short time: find the producer that loops on it (`waq dlq stats` shows one recipient), then replay as published after a few minutes.",
		AsIs: FitYes, AsTemplate: FitNo},
	4: {Title: "API Too Many Calls: the app's call rate limit",
		Next:  "The app hit its call limit: check the app's usage (X-App-Usage) and what else calls the Graph API with this app; replay as published once it is under the limit.",
		Check: "The app dashboard › Application rate limit.", AsIs: FitYes, AsTemplate: FitNo},
	80007: {Title: "Rate limit issues: the WhatsApp Business Account's limit",
		Next:  "The WABA hit its call limit: check its usage (X-Business-Use-Case-Usage) and other apps that call for this WABA; replay as published once it is under the limit.",
		Check: "WhatsApp Manager › Insights, and other apps connected to the WABA.", AsIs: FitYes, AsTemplate: FitNo},

	// The 24-hour window.
	131047: {Title: "Re-engagement message: more than 24 hours since the customer's last message",
		Next:  "Only a template message reaches the customer outside the window: replay as a template (`waq dlq replay --reason window --as-template NAME --language CODE`) with an approved template, or wait for the customer to write.",
		Check: "WhatsApp Manager › Message templates: an approved template (utility or marketing) to re-open the conversation.", AsIs: FitNo, AsTemplate: FitYes},

	// Templates: nothing to replay until the template (or the producer's
	// parameters) is fixed.
	132000: {Title: "Template parameter count mismatch",
		Next:  "The job's parameters do not match the template's placeholders: fix the producer (or the template), then replay as published or send anew.",
		Check: checkTemplate, AsIs: FitAfterFix, AsTemplate: FitNo},
	132001: {Title: "Template does not exist (in that language, or not approved)",
		Next:  "Make sure the template is approved, and its name and language code are exactly those of the job; once it is, replay as published.",
		Check: checkTemplate, Ticket: "When WhatsApp Manager shows the template approved in that language and the error persists.", AsIs: FitAfterFix, AsTemplate: FitNo},
	132005: {Title: "Template hydrated text too long",
		Next:  "The text with its parameters filled in is too long: shorten the parameters in the producer and send anew.",
		Check: checkTemplate, AsIs: FitNo, AsTemplate: FitNo},
	132007: {Title: "Template format character policy violated",
		Next:  "A parameter breaks the template's format rules (newlines, tabs, more than 4 spaces in a row): fix the producer and send anew.",
		Check: checkTemplate, AsIs: FitNo, AsTemplate: FitNo},
	132012: {Title: "Template parameter format mismatch",
		Next:  "A parameter has the wrong format for its placeholder (text, currency, date, media): fix the producer and send anew.",
		Check: checkTemplate, AsIs: FitNo, AsTemplate: FitNo},
	132015: {Title: "Template is paused for low quality",
		Next:  "Edit the template to address the feedback that paused it (or wait for the pause to end); replay as published once it is active again.",
		Check: checkTemplate + " The template's quality rating and why it was paused.", AsIs: FitAfterFix, AsTemplate: FitNo},
	132016: {Title: "Template is disabled (paused too often for low quality)",
		Next:  "A disabled template cannot be used again: create a new template with different content, have it approved, and replay as that template (--as-template) or send anew.",
		Check: checkTemplate, AsIs: FitNo, AsTemplate: FitAfterFix},
	132018: {Title: "Template parameters: an issue with the parameters",
		Next:  "Compare the job's parameters with the template's (count, type, the button's URL suffix); fix the producer and send anew.",
		Check: checkTemplate, AsIs: FitNo, AsTemplate: FitNo},
	132068: {Title: "Flow is in blocked state",
		Next:  "The flow the message uses is blocked: fix it in WhatsApp Manager › Flows, then replay as published.",
		Check: "WhatsApp Manager › Flows: the flow's status and its health.", AsIs: FitAfterFix, AsTemplate: FitNo},
	132069: {Title: "Flow is in throttled state",
		Next:  "Too many messages with this flow in the last hour: replay as published after an hour, or fix the flow's health.",
		Check: "WhatsApp Manager › Flows: the flow's status and its health.", AsIs: FitAfterFix, AsTemplate: FitNo},

	// The recipient cannot be reached: replaying sends to the same
	// person, who still cannot be reached.
	131026: {Title: "Message undeliverable",
		Next:  "The recipient is not on WhatsApp, has not accepted the terms, or runs an old app: reach them another way and ask them to update WhatsApp and message your number; do not replay until they have.",
		Check: "`waq dlq stats`: one recipient is their phone; many recipients of one number is the number (its quality and status).", AsIs: FitAfterFix, AsTemplate: FitNo},
	130472: {Title: "User's number is part of an experiment",
		Next: "Meta held the marketing message back for an experiment: do not replay; the recipient can get it outside the experiment later.",
		AsIs: FitNo, AsTemplate: FitNo},
	130497: {Title: "Business account restricted from messaging users in this country",
		Next:  "The WABA may not message this country: remove these recipients from the campaign; a replay fails the same way.",
		Check: checkAccount, Ticket: "When you believe the restriction is wrong.", AsIs: FitNo, AsTemplate: FitNo},
	131049: {Title: "Meta chose not to deliver (per-user marketing limit)",
		Next: "Meta held the marketing message to keep the recipient's experience healthy: do not replay at once; send later, and less often, to this recipient.",
		AsIs: FitAfterFix, AsTemplate: FitNo},
	131050: {Title: "User stopped marketing messages from this business",
		Next: "The recipient opted out of your marketing messages: remove them from marketing campaigns and purge these entries; only a non-marketing template may reach them.",
		AsIs: FitNo, AsTemplate: FitNo},

	// The request is invalid: the producer must change it.
	100: {Title: "Invalid parameter",
		Next: "The message has an unsupported or misspelled parameter: compare the job's message with Meta's reference, fix the producer and send anew.",
		AsIs: FitNo, AsTemplate: FitNo},
	131008: {Title: "Required parameter is missing",
		Next: "Add the missing parameter in the producer (error_data.details names it) and send anew.",
		AsIs: FitNo, AsTemplate: FitNo},
	131009: {Title: "Parameter value is not valid",
		Next:  "Fix the value error_data.details names in the producer and send anew; a template approved minutes ago can also give this for a while.",
		Check: "WhatsApp Manager › Phone numbers: the sending number belongs to this WABA.", AsIs: FitNo, AsTemplate: FitNo},
	131021: {Title: "Recipient cannot be sender",
		Next: "The job sends to the business number itself: fix the producer's recipient and purge the entry.",
		AsIs: FitNo, AsTemplate: FitNo},
	131030: {Title: "Recipient phone number not in allowed list",
		Next:  "A test number sends only to the numbers allowed in the app: add the recipient there, or send from a production number.",
		Check: "The app dashboard › WhatsApp › API Setup: the allowed recipient numbers.", AsIs: FitAfterFix, AsTemplate: FitNo},
	131051: {Title: "Unsupported message type",
		Next: "Fix the message type in the producer and send anew.",
		AsIs: FitNo, AsTemplate: FitNo},
	131053: {Title: "Media upload error",
		Next: "The media could not be fetched or is of an unsupported type or size: check the media URL answers publicly with a supported type, then send anew.",
		AsIs: FitAfterFix, AsTemplate: FitNo},
	131055: {Title: "Method not allowed",
		Next: "The call is not allowed for this number or endpoint: check the job's `api` (messages or marketing_messages) and send anew.",
		AsIs: FitNo, AsTemplate: FitNo},
	131062: {Title: "Business-scoped user ID recipients are not supported for this message",
		Next:   "This message (an authentication template, for one) cannot go to a business-scoped user ID: address it by phone number (message.to instead of message.recipient) and send anew.",
		Ticket: "When the message is not one Meta documents as needing a phone number.", AsIs: FitNo, AsTemplate: FitNo},
	135000: {Title: "Generic user error",
		Next:   "Meta could not say what is wrong with the parameters: compare the job with one that was sent, fix the producer and send anew.",
		Ticket: "When the same request keeps failing and nothing in it differs from one that is sent: open a ticket with `waq dlq export --code 135000`.", AsIs: FitNo, AsTemplate: FitNo},

	// Credentials: paused, parked as account after the pause gave up.
	0: {Title: "AuthException: unable to authenticate the app user",
		Next:  "The token expired or was invalidated (a password change, an app blocked): issue a new one (a system user token does not expire), put it in the token's variable, restart the workers, then replay as published.",
		Check: checkToken, AsIs: FitAfterFix, AsTemplate: FitNo},
	3: {Title: "API Method: capability or permissions issue",
		Next:  "The app lacks a capability for this call: check its permissions and the number's registration, then replay as published.",
		Check: checkToken, AsIs: FitAfterFix, AsTemplate: FitNo},
	10: {Title: "Permission denied",
		Next:  "The token lacks whatsapp_business_messaging, or the number is not in this WABA: grant it (or fix the token's assets), then replay as published.",
		Check: checkToken, AsIs: FitAfterFix, AsTemplate: FitNo},
	190: {Title: "Access token has expired",
		Next:  "Issue a new token (a system user token does not expire), put it in the token's variable, restart the workers, then replay as published.",
		Check: checkToken, AsIs: FitAfterFix, AsTemplate: FitNo},
	200: {Title: "API Permission: permission not granted or removed",
		Next:  "Grant the permission again to the app or the system user, then replay as published.",
		Check: checkToken, AsIs: FitAfterFix, AsTemplate: FitNo},
	131005: {Title: "Access denied",
		Next:  "The permission was not granted or was removed: grant whatsapp_business_messaging again, then replay as published.",
		Check: checkToken, AsIs: FitAfterFix, AsTemplate: FitNo},

	// The number cannot send.
	33: {Title: "Business phone number deleted",
		Next:  "The phone_number_id no longer exists: move its jobs to a number that does (fix the producer, send anew) and remove it from the phone-number file.",
		Check: checkNumber, AsIs: FitNo, AsTemplate: FitNo},
	131037: {Title: "Display name needs approval",
		Next:  "The number's display name is not approved yet: get it approved in WhatsApp Manager, then replay as published.",
		Check: checkNumber, Ticket: "When the review takes more than a few days.", AsIs: FitAfterFix, AsTemplate: FitNo},
	131045: {Title: "Incorrect certificate: phone number registration error",
		Next:  "Register the number again (POST /{phone_number_id}/register with its two-step PIN), then replay as published.",
		Check: checkNumber, AsIs: FitAfterFix, AsTemplate: FitNo},
	131048: {Title: "Spam rate limit hit",
		Next:  "Too many recipients blocked or reported the number: lower the volume, check the templates' quality and who you send to; replay as published only once the quality is back.",
		Check: checkNumber, AsIs: FitAfterFix, AsTemplate: FitNo},
	133010: {Title: "Phone number not registered on the platform",
		Next:  "Register the number (POST /{phone_number_id}/register), then replay as published.",
		Check: checkNumber, AsIs: FitAfterFix, AsTemplate: FitNo},

	// The WhatsApp Business Account.
	368: {Title: "Temporarily blocked for policy violations",
		Next:  "The WABA is restricted for a policy violation: read the notice, fix the cause, appeal; replay as published once the restriction is lifted.",
		Check: checkAccount, Ticket: ticketAccount, AsIs: FitAfterFix, AsTemplate: FitNo},
	131031: {Title: "Account has been locked",
		Next:  "The WABA is locked (a policy violation, or data that failed verification such as a wrong two-step PIN): resolve it in Business Support Home, then replay as published.",
		Check: checkAccount, Ticket: ticketAccount, AsIs: FitAfterFix, AsTemplate: FitNo},
	131042: {Title: "Business eligibility: payment issue",
		Next:  "Fix the payment method or settle the invoice, then replay as published.",
		Check: checkPayment, Ticket: "When the payment method is valid and the error persists.", AsIs: FitAfterFix, AsTemplate: FitNo},
	131064: {Title: "Messaging limit reached (template category enforcement)",
		Next:  "The WABA reached its limit of unique customers in 24 hours: wait for the window to roll, or raise the limit (quality, verification); then replay as published.",
		Check: checkNumber, AsIs: FitAfterFix, AsTemplate: FitNo},
}

var adviceByReason = map[string]Advice{
	ReasonWindow: {Title: "outside the 24-hour customer service window",
		Next:  "Replay as an approved template (`--as-template NAME --language CODE`): outside the window only a template reaches the customer.",
		Check: "WhatsApp Manager › Message templates: an approved template to re-open the conversation.", AsIs: FitNo, AsTemplate: FitYes},
	ReasonTemplate: {Title: "template missing, paused, disabled or its parameters wrong",
		Next:  "Fix the template in WhatsApp Manager (or the producer's parameters), then replay as published; `waq dlq stats --reason template` names the templates.",
		Check: checkTemplate, AsIs: FitAfterFix, AsTemplate: FitNo},
	ReasonRetriesExhausted: {Title: "the retries were spent",
		Next:  "The failure was transient until it was not: run `waq doctor` and check the status page; when the cause is gone, replay as published.",
		Check: checkStatus, Ticket: ticket131000, AsIs: FitYes, AsTemplate: FitNo},
	ReasonInvalid: {Title: "the job or the request is malformed",
		Next: "Fix the producer (the entry's problem says what), send anew, and purge these entries; a replay of an invalid job fails the same way.",
		AsIs: FitNo, AsTemplate: FitNo},
	ReasonUndeliverable: {Title: "the recipient cannot be reached",
		Next: "Reach the recipient another way; replay only once they can receive WhatsApp messages from you.",
		AsIs: FitAfterFix, AsTemplate: FitNo},
	ReasonExpired: {Title: "not_after passed before it could be sent",
		Next: "The job was too late to send: send a new one if it still matters; a replay is parked as expired again.",
		AsIs: FitNo, AsTemplate: FitNo},
	ReasonAccount: {Title: "an account, number or credential problem outlasted the pause",
		Next:  "Fix the account in WhatsApp Manager (token, number, WABA; `waq doctor` says which), then " + replayLater[0:1] + replayLater[1:],
		Check: checkAccount, Ticket: ticketAccount, AsIs: FitAfterFix, AsTemplate: FitNo},
	ReasonUnknown: {Title: "a code no policy rule names",
		Next:   "Look the code up on Meta's error-codes page and add a rule for it to the policy file (`waq policy explain CODE`); replay as published if it was transient.",
		Ticket: "When Meta's page does not list the code: open a ticket with `waq dlq export --reason unknown`.", AsIs: FitYes, AsTemplate: FitNo},
}
