package fakegraph

import (
	"net/http"
	"sort"
	"strconv"
)

// CodeInfo is what the simulator answers for one Graph API error code: the
// HTTP status, the error type and the texts of Meta's error-codes page.
type CodeInfo struct {
	Code int `json:"code"`
	// HTTPStatus is the status Meta documents for the code.
	HTTPStatus int `json:"http_status"`
	// Type is error.type; Meta sends "OAuthException" for nearly every code,
	// WhatsApp ones included.
	Type string `json:"type"`
	// Title is the code's title; error.message is "(#code) Title" unless
	// Message is set.
	Title string `json:"title"`
	// Message replaces "(#code) Title" as error.message where Meta words it
	// differently (code 4: "(#4) Application request limit reached").
	Message string `json:"message,omitempty"`
	// Details is error.error_data.details.
	Details string `json:"details"`
	// Subcode is error.error_subcode; 0 leaves it out (Meta stopped sending
	// subcodes for most codes in v16.0).
	Subcode int `json:"error_subcode,omitempty"`
	// User says whether the answer carries error_user_title and
	// error_user_msg, as Meta's answers to request and template problems do.
	User bool `json:"user,omitempty"`
	// Async says whether Meta also reports the code in a status webhook
	// (statuses[].errors[]) after accepting a message.
	Async bool `json:"async,omitempty"`
}

const oauth = "OAuthException"

// codes is Meta's error-codes page (WhatsApp Cloud API, 2026) as the
// simulator answers it. Titles and details follow Meta's wording; statuses
// are the ones Meta documents per code (throttling codes answer 429, 131000
// answers 500, service outages 503, most others 400).
var codes = map[int]*CodeInfo{
	// Authorization.
	0:   {HTTPStatus: 401, Title: "AuthException", Details: "We were unable to authenticate the app user."},
	3:   {HTTPStatus: 500, Title: "API Method", Details: "Capability or permissions issue."},
	10:  {HTTPStatus: 403, Title: "Permission Denied", Message: "(#10) Application does not have permission for this action", Details: "Permission is either not granted or has been removed."},
	190: {HTTPStatus: 401, Title: "Access token has expired", Details: "Your access token has expired.", Subcode: 463},
	200: {HTTPStatus: 403, Title: "API Permission", Message: "(#200) Permissions error", Details: "Permission is either not granted or has been removed."},

	// Throttling.
	4:      {HTTPStatus: 429, Title: "API Too Many Calls", Message: "(#4) Application request limit reached", Details: "The app has reached its API call rate limit."},
	80007:  {HTTPStatus: 429, Title: "Rate limit issues", Message: "(#80007) There have been too many calls to this WhatsApp Business account. Wait a bit and try again.", Details: "The WhatsApp Business Account has reached its rate limit."},
	130429: {HTTPStatus: 429, Title: "Rate limit hit", Details: "Cloud API message throughput has been reached.", Subcode: 2494055},
	131048: {HTTPStatus: 429, Title: "Spam rate limit hit", Details: "Message failed to send because there are restrictions on how many messages can be sent from this phone number. This may be because too many previous messages were blocked or flagged as spam.", Async: true},
	131056: {HTTPStatus: 429, Title: "(Business Account, Consumer Account) pair rate limit hit", Details: "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.", Async: true},
	133016: {HTTPStatus: 429, Title: "Account register deregister rate limit exceeded", Details: "Registration or Deregistration failed because there were too many attempts for this phone number in a short period of time."},
	131064: {HTTPStatus: 429, Title: "Messaging limit reached", Details: "Message failed to send because the business has reached its messaging limit of unique customers in a rolling 24-hour period.", Async: true},

	// Integrity.
	368:    {HTTPStatus: 403, Title: "Temporarily blocked for policies violations", Details: "The WhatsApp Business Account associated with the app has been restricted or disabled for violating a platform policy."},
	130497: {HTTPStatus: 403, Title: "Business account is restricted from messaging users in this country", Details: "The WhatsApp Business Account is restricted from messaging to users in certain countries.", Async: true},
	131031: {HTTPStatus: 403, Title: "Account has been locked", Details: "The WhatsApp Business Account associated with the app has been restricted or disabled for violating a platform policy, or we were unable to verify data included in the request against data set on the WhatsApp Business Account."},

	// Other.
	1:       {HTTPStatus: 400, Title: "API Unknown", Message: "An unknown error has occurred.", Details: "Invalid request or possible server error."},
	2:       {HTTPStatus: 503, Title: "API Service", Message: "An unexpected error has occurred. Please retry your request later.", Details: "Temporary due to downtime or due to being overloaded."},
	33:      {HTTPStatus: 400, Title: "Parameter value is not valid", Details: "The business phone number has been deleted."},
	100:     {HTTPStatus: 400, Title: "Invalid parameter", Details: "The request included one or more unsupported or misspelled parameters.", User: true},
	130472:  {HTTPStatus: 400, Title: "User's number is part of an experiment", Details: "Message was not sent as part of an experiment.", Async: true},
	131000:  {HTTPStatus: 500, Title: "Something went wrong", Details: "Message failed to send due to an unknown error.", Async: true},
	131005:  {HTTPStatus: 403, Title: "Access denied", Details: "Permission is either not granted or has been removed."},
	131030:  {HTTPStatus: 400, Title: "Recipient phone number not in allowed list", Details: "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.", Subcode: 2655007},
	131062:  {HTTPStatus: 400, Title: "Business-scoped User ID recipients are not supported for this message", Details: "Business-scoped User ID (BSUID) recipients are not supported for this message.", User: true},
	131008:  {HTTPStatus: 400, Title: "Required parameter is missing", Details: "The request is missing a required parameter.", User: true},
	131009:  {HTTPStatus: 400, Title: "Parameter value is not valid", Details: "One or more parameter values are invalid.", User: true},
	131016:  {HTTPStatus: 503, Title: "Service unavailable", Details: "A service is temporarily unavailable."},
	131021:  {HTTPStatus: 400, Title: "Recipient cannot be sender", Details: "Sender and recipient phone number is the same.", User: true},
	131026:  {HTTPStatus: 400, Title: "Message undeliverable", Details: "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number, the recipient has not accepted WhatsApp's new Terms of Service and Privacy Policy, or the recipient is using an old WhatsApp version.", Async: true},
	131037:  {HTTPStatus: 400, Title: "WhatsApp provided number needs display name approval before message can be sent.", Details: "The 555 business phone number needs display name approval before it can send messages."},
	131042:  {HTTPStatus: 400, Title: "Business eligibility payment issue", Details: "Message failed to send because there were one or more errors related to your payment method.", Async: true},
	131045:  {HTTPStatus: 400, Title: "Incorrect certificate", Details: "Message failed to send due to a phone number registration error."},
	131047:  {HTTPStatus: 400, Title: "Re-engagement message", Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.", User: true, Async: true},
	131049:  {HTTPStatus: 400, Title: "Meta chose not to deliver.", Details: "This message was not delivered to maintain healthy ecosystem engagement.", Async: true},
	131050:  {HTTPStatus: 400, Title: "User has stopped marketing messages", Details: "Unable to deliver the marketing message. This is because the user has stopped marketing messages from your business.", Async: true},
	131051:  {HTTPStatus: 400, Title: "Unsupported message type", Details: "Unsupported message type.", User: true},
	131052:  {HTTPStatus: 400, Title: "Media download error", Details: "Unable to download the media sent by the user.", Async: true},
	131053:  {HTTPStatus: 400, Title: "Media upload error", Details: "Unable to upload the media used in the message.", User: true, Async: true},
	131055:  {HTTPStatus: 405, Title: "Method not allowed", Details: "The method is not allowed for this endpoint."},
	131057:  {HTTPStatus: 503, Title: "Account in maintenance mode", Details: "Business account is in maintenance mode. The WhatsApp Business Account may be undergoing a throughput upgrade."},
	132000:  {HTTPStatus: 400, Title: "Number of parameters does not match the expected number of params", Details: "The number of variable parameter values included in the request did not match the number of variable parameters defined in the template.", User: true},
	132001:  {HTTPStatus: 404, Title: "Template name does not exist in the translation", Details: "The template does not exist in the specified language or the template has not been approved.", User: true},
	132005:  {HTTPStatus: 400, Title: "Template Hydrated Text Too Long", Details: "Translated text is too long.", User: true},
	132007:  {HTTPStatus: 400, Title: "Template Format Character Policy Violated", Details: "Template content violates a WhatsApp policy.", User: true},
	132012:  {HTTPStatus: 400, Title: "Parameter format does not match format in the created template", Details: "Variable parameter values formatted incorrectly.", User: true},
	132015:  {HTTPStatus: 400, Title: "Template is Paused", Details: "Template is paused due to low quality so it cannot be sent in a template message.", User: true},
	132016:  {HTTPStatus: 400, Title: "Template is Disabled", Details: "Template has been paused too many times due to low quality and is now permanently disabled.", User: true},
	132018:  {HTTPStatus: 400, Title: "Template Parameter Issue", Details: "There was an issue with the parameters in your template.", User: true},
	132068:  {HTTPStatus: 400, Title: "Flow is blocked", Details: "Flow is in blocked state.", User: true},
	132069:  {HTTPStatus: 400, Title: "Flow is throttled", Details: "Flow is in throttled state and 10 messages using this flow were already sent in the last hour.", User: true},
	133004:  {HTTPStatus: 503, Title: "Server Temporarily Unavailable", Details: "Server is temporarily unavailable."},
	133010:  {HTTPStatus: 400, Title: "Phone number Not Registered", Details: "The phone number is not registered on the WhatsApp Business Platform."},
	135000:  {HTTPStatus: 400, Title: "Generic user error", Details: "Message failed to send because of an unknown error with your request parameters.", User: true},
	2494100: {HTTPStatus: 503, Title: "Account in maintenance mode", Details: "The business phone number is in maintenance mode and cannot send messages right now."},

	// Graph API codes the simulator needs for its own answers.
	104:  {HTTPStatus: 400, Title: "An access token is required to request this resource.", Message: "An access token is required to request this resource.", Details: "The request carried no access token."},
	2500: {HTTPStatus: 400, Title: "Unknown path components", Details: "The path is not a Graph API endpoint."},
}

func init() {
	for c, info := range codes {
		info.Code = c
		if info.Type == "" {
			info.Type = oauth
		}
	}
}

// Lookup returns what the simulator answers for code: Meta's documented
// status and texts for a known code (any of 200-299 answers like 200), and
// a generic 400 answer for a code Meta does not document.
func Lookup(code int) CodeInfo {
	if info, ok := codes[code]; ok {
		return *info
	}
	if code > 200 && code <= 299 {
		info := *codes[200]
		info.Code = code
		info.Message = "(#" + strconv.Itoa(code) + ") Permissions error"
		return info
	}
	return CodeInfo{Code: code, HTTPStatus: http.StatusBadRequest, Type: oauth, Title: "Unknown error",
		Details: "The simulator has no text for this code."}
}

// Known reports whether code is one the simulator has Meta's texts for.
func Known(code int) bool {
	_, ok := codes[code]
	return ok || (code >= 200 && code <= 299)
}

// Codes lists the codes the simulator has Meta's texts for, ascending.
func Codes() []int {
	out := make([]int, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	sort.Ints(out)
	return out
}

// message is error.message for the code: "(#131000) Something went wrong".
func (ci *CodeInfo) message() string {
	if ci.Message != "" {
		return ci.Message
	}
	return "(#" + strconv.Itoa(ci.Code) + ") " + ci.Title
}
