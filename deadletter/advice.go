package deadletter

import "github.com/waqhq/waq/policy"

// Advice is the next step for the entry: the policy's advice row of its
// code, or of its reason when no row names the code.
func (e *Entry) Advice() policy.Advice {
	c, ok := e.Code()
	return policy.AdviceFor(e.Reason, c, ok)
}
