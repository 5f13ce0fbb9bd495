package ledger

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// RecipientIDs are the business-scoped user IDs a status webhook gave for a
// job's recipient: the BSUID of a recipient the job addressed by number
// (recipient_user_id), and the parent BSUID (recipient_parent_user_id).
// A job addressed by BSUID has its UserID in its body already.
type RecipientIDs struct {
	UserID       string `json:"recipient_user_id,omitempty"`
	ParentUserID string `json:"recipient_parent_user_id,omitempty"`
}

// Knows reports whether every ID of ids that is not "" is already in r:
// then recording ids changes nothing.
func (r RecipientIDs) Knows(ids RecipientIDs) bool {
	return (ids.UserID == "" || ids.UserID == r.UserID) && (ids.ParentUserID == "" || ids.ParentUserID == r.ParentUserID)
}

// recipientIDsScript writes the IDs given (not "") into the job's hash
// ("ru", "rp"), which the job has only if it failed before or a webhook
// gave IDs: a job sent first time whose webhooks give none keeps nothing
// more. A hash made here expires with the retention. KEYS: state. ARGV:
// user ID, parent user ID, ttl ms. Returns 1 when something changed.
var recipientIDsScript = redis.NewScript(`
local n = 0
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'ru') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'ru', ARGV[1]); n = 1
end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'rp') ~= ARGV[2] then
  redis.call('HSET', KEYS[1], 'rp', ARGV[2]); n = 1
end
if n == 1 and redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return n
`)

// RecordRecipientIDs keeps the business-scoped user IDs a status webhook
// gave for the job's recipient (State.Recipient); an empty one is not
// written, so a later status without it keeps the one known. It reports
// whether anything changed. ids empty does nothing, without a round trip.
func (l *Ledger) RecordRecipientIDs(ctx context.Context, id string, ids RecipientIDs) (bool, error) {
	if ids == (RecipientIDs{}) {
		return false, nil
	}
	n, err := recipientIDsScript.Run(ctx, l.rdb, []string{l.stateKey(id)}, ids.UserID, ids.ParentUserID, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("ledger recipient ids %s: %w", id, err)
	}
	return n == 1, nil
}
