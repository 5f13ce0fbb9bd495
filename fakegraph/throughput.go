package fakegraph

import "strconv"

// Throughput levels of a phone number, as the Graph API's phone number field
// throughput {"level": ...} gives them: STANDARD is 80 messages per second,
// HIGH the automatic upgrade to 1,000.
const (
	ThroughputStandard      = "STANDARD"
	ThroughputHigh          = "HIGH"
	ThroughputNotApplicable = "NOT_APPLICABLE"
)

var throughputLevels = []string{ThroughputStandard, ThroughputHigh, ThroughputNotApplicable}

// levelMPS is the rate Meta allows at a level.
func levelMPS(level string) int {
	if level == ThroughputHigh {
		return 1000
	}
	return 80
}

// ThroughputUpdate changes a phone number's throughput, as Meta's automatic
// upgrade does: the level the phone number GET reports and the rate the
// simulator enforces (130429 past it, with limits.throughput enabled).
type ThroughputUpdate struct {
	// Level is STANDARD, HIGH or NOT_APPLICABLE.
	Level string `json:"level"`
	// MPS is the rate enforced from now on; 0 takes the level's (80, or
	// 1,000 for HIGH).
	MPS int `json:"mps,omitempty"`
}

// SetThroughput changes the throughput of a phone number of the registry
// (any number when the registry is empty) until Reset; a scenario
// replacement keeps it. The sends already counted in the number's window
// stay counted.
func (s *Server) SetThroughput(phoneNumberID string, u ThroughputUpdate) error {
	if phoneNumberID == "" {
		return errString("phone number id must not be empty")
	}
	if !oneOf(u.Level, throughputLevels) {
		return errString("level " + strconv.Quote(u.Level) + ": want STANDARD, HIGH or NOT_APPLICABLE")
	}
	if u.MPS < 0 {
		return errString("mps must not be negative")
	}
	if u.MPS == 0 {
		u.MPS = levelMPS(u.Level)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn := s.snap.Load(); len(sn.phones) > 0 && sn.phones[phoneNumberID] == nil {
		return errString("phone number " + phoneNumberID + " is not in the scenario's registry")
	}
	m := make(map[string]ThroughputUpdate, len(s.ov.throughput)+1)
	for k, v := range s.ov.throughput {
		m[k] = v
	}
	m[phoneNumberID] = u
	s.ov.throughput = m
	s.rebuildLocked()
	return nil
}

// applyThroughput puts an update made over the control API on a phone
// number's entry.
func applyThroughput(p *PhoneNumber, ov map[string]ThroughputUpdate) {
	if u, ok := ov[p.PhoneNumberID]; ok {
		p.ThroughputLevel, p.MPS = u.Level, u.MPS
	}
}
