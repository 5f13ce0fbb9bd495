package fakegraph

import (
	"net/http"
	"strings"
	"time"
)

// bearer is the access token of a request: the Authorization header
// ("Bearer T" or "OAuth T") or the access_token query parameter.
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if r.URL.RawQuery != "" {
		return r.URL.Query().Get("access_token")
	}
	return ""
}

// pst is the zone Meta writes token expiry messages in.
var pst = time.FixedZone("PST", -8*60*60)

// checkToken answers a token the way the Graph API does: 104 without one,
// 190 for one it cannot parse, 190/463 for an expired one, 190/460 for a
// revoked one.
func (sn *snapshot) checkToken(tok string, now time.Time) *errSpec {
	if tok == "" {
		e := codeError(104)
		e.noData = true
		return e
	}
	ti := sn.tokens[tok]
	if ti == nil {
		if sn.anyToken {
			return nil
		}
		return invalidToken()
	}
	if ti.revoked {
		e := codeError(190)
		e.subcode = 460
		e.message = "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."
		e.details = "The access token has been invalidated."
		e.noData = true
		return e
	}
	if ti.expiresAt != nil && !now.Before(*ti.expiresAt) {
		e := codeError(190)
		e.message = expiredMessage(*ti.expiresAt, now)
		e.noData = true
		return e
	}
	return nil
}

func expiredMessage(at, now time.Time) string {
	const layout = "Monday, 02-Jan-06 15:04:05 MST"
	return "Error validating access token: Session has expired on " + at.In(pst).Format(layout) +
		". The current time is " + now.In(pst).Format(layout) + "."
}

func invalidToken() *errSpec {
	e := codeError(190)
	e.subcode = 0
	e.message = "Invalid OAuth access token - Cannot parse access token"
	e.details = "The access token could not be decrypted."
	e.noData = true
	return e
}
