package doctor

import (
	"strings"

	"github.com/waqhq/waq/queue"
)

func checkRecipient(to string) Result {
	r := Result{Check: "recipient"}
	if err := queue.ValidateRecipient(to); err != nil {
		r.Status, r.Detail = Fail, strings.TrimPrefix(err.Error(), "invalid job: message.to: ")
		r.Fix = "write the number with its country code, digits only, like 15551234567"
		return r
	}
	r.Status, r.Detail = OK, to+" is digits with a country code"
	return r
}
