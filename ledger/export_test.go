package ledger

import "context"

// GetBody reads job id's body at stream sequence seq, as a record's read
// does.
func (b *Bodies) GetBody(ctx context.Context, id string, seq uint64) ([]byte, error) {
	return b.get(ctx, id, seq)
}

// IsUUIDValue and EncodeID expose the wamid index's value forms.
var (
	IsUUIDValue = isUUIDValue
	EncodeID    = encodeID
)
