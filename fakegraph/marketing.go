package fakegraph

import "strings"

// APIMarketingMessages is the Marketing Messages API's edge:
// POST /{version}/{phone_number_id}/marketing_messages. It takes the same
// message object as /messages (marketing templates only, with
// product_policy) and answers the same way; Send.API tells them apart.
const APIMarketingMessages = "marketing_messages"

// The values of messages[].message_status in a send answer. Meta answers
// accepted, or, for marketing messages, held_for_quality_assessment (held
// while Meta judges the campaign's quality) or paused (the campaign is
// paused); a rule's Response.MessageStatus scripts them.
const (
	StatusAccepted = "accepted"
	StatusHeld     = "held_for_quality_assessment"
	StatusPaused   = "paused"
)

var (
	messageStatuses = []string{StatusAccepted, StatusHeld, StatusPaused}
	productPolicies = []string{"CLOUD_API_FALLBACK", "STRICT"}
	apis            = []string{"messages", APIMarketingMessages}
)

// checkMarketing checks what the Marketing Messages API adds to a message:
// a template, and a product_policy it knows.
func checkMarketing(m *messageBody, msgType string) *errSpec {
	if msgType != "template" {
		return invalidParam("(#100) Invalid parameter", "Message must be a template message: the Marketing Messages API sends marketing templates only, got type \""+msgType+"\".")
	}
	if p := m.ProductPolicy; p != nil && !oneOf(*p, productPolicies) {
		return invalidParam("(#100) Param product_policy must be one of {"+strings.Join(productPolicies, ", ")+"} - got \""+*p+"\".",
			"product_policy must be CLOUD_API_FALLBACK or STRICT.")
	}
	return nil
}
