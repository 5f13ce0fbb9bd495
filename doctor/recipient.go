package doctor

import (
	"strconv"
	"strings"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/queue"
)

// checkRecipient checks the recipient's format: a number (to) or a
// business-scoped user ID (recipient), which it shows masked.
func checkRecipient(to, userID string) Result {
	r := Result{Check: "recipient"}
	if userID != "" {
		masked := deadletter.MaskRecipient(userID)
		if err := queue.ValidateUserID(userID); err != nil {
			msg := strings.TrimPrefix(err.Error(), "invalid job: message.recipient: ")
			r.Status, r.Detail = Fail, strings.ReplaceAll(msg, strconv.Quote(userID), strconv.Quote(masked))
			r.Fix = "give the business-scoped user ID as Meta sent it (contacts[].user_id, a webhook's recipient_user_id), like US.13491208655302741918; a number goes in --to"
			return r
		}
		r.Status, r.Detail = OK, masked+" is a business-scoped user ID"
		if queue.IsParentUserID(userID) {
			r.Detail = masked + " is a parent business-scoped user ID"
		}
		return r
	}
	if err := queue.ValidateRecipient(to); err != nil {
		r.Status, r.Detail = Fail, strings.TrimPrefix(err.Error(), "invalid job: message.to: ")
		r.Fix = "write the number with its country code, digits only, like 15551234567"
		if queue.IsUserID(to) {
			r.Fix = "give a business-scoped user ID with --recipient"
		}
		return r
	}
	r.Status, r.Detail = OK, to+" is digits with a country code"
	return r
}
