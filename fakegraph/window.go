package fakegraph

import (
	"time"
)

// Inbound simulates a message from a customer: it opens the customer's
// 24-hour window with phoneNumberID ("" opens it with every number) and,
// when webhooks are on and phoneNumberID is given, sends the message's
// webhook.
func (s *Server) Inbound(phoneNumberID, from, text string) error {
	if !phoneLike(from) {
		return errString("from must be a phone number with its country code")
	}
	s.openWindow(phoneNumberID, from, s.now())
	if phoneNumberID != "" {
		sn := s.snap.Load()
		if text == "" {
			text = "Hi"
		}
		s.hooks.inbound(sn, sn.phone(phoneNumberID), digitsOnly(from), text)
	}
	return nil
}

func (s *Server) openWindow(phoneNumberID, to string, at time.Time) {
	if phoneNumberID == "" {
		phoneNumberID = "*"
	}
	s.windows.Store(phoneNumberID+"|"+recipientKey(to), at)
}

func (s *Server) windowOpen(sn *snapshot, phoneNumberID, waID string, now time.Time) bool {
	d := sn.window.Duration.D()
	for _, k := range [2]string{phoneNumberID + "|" + waID, "*|" + waID} {
		if v, ok := s.windows.Load(k); ok && now.Sub(v.(time.Time)) < d {
			return true
		}
	}
	return false
}
