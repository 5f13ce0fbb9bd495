package fakegraph

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// phoneFields are the fields of a WhatsAppBusinessPhoneNumber node the
// simulator knows, and defaultPhoneFields those Meta returns without a
// fields parameter.
var (
	phoneFields = []string{"id", "verified_name", "display_phone_number", "quality_rating", "status",
		"code_verification_status", "name_status", "new_name_status", "platform_type", "throughput",
		"messaging_limit_tier", "account_mode", "is_official_business_account", "is_pin_enabled",
		"last_onboarded_time", "webhook_configuration", "health_status"}
	defaultPhoneFields = []string{"verified_name", "code_verification_status", "display_phone_number",
		"quality_rating", "platform_type", "throughput", "id"}
)

// readNode serves GET /{version}/{id}: a phone number of the registry, or a
// WABA.
func (s *Server) readNode(w http.ResponseWriter, r *http.Request, id string) {
	sn := s.snap.Load()
	if e := sn.checkToken(bearer(r), s.now()); e != nil {
		s.writeGraphError(w, r, e)
		return
	}
	if id != DefaultWABAID || len(sn.phones) > 0 {
		if p := sn.phone(id); p != nil {
			s.writePhone(w, r, sn, p)
			return
		}
	}
	if sn.wabaKnown(id) {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "name": "waq Test WABA", "currency": "USD", "timezone_id": "1",
			"message_template_namespace": "c8ae5f90_307a_ca4c_b8f6_d1e2f2a5ac7b",
		})
		return
	}
	s.writeGraphError(w, r, unknownObject("get", id))
}

func (s *Server) writePhone(w http.ResponseWriter, r *http.Request, sn *snapshot, p *phoneInfo) {
	fields := defaultPhoneFields
	if f := r.URL.Query().Get("fields"); f != "" {
		fields = nil
		for _, name := range strings.Split(f, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !oneOf(name, phoneFields) {
				e := codeError(100)
				e.message = "(#100) Tried accessing nonexisting field (" + name + ") on node type (WhatsAppBusinessPhoneNumber)"
				e.noData = true
				e.userTitle, e.userMsg = "", ""
				s.writeGraphError(w, r, e)
				return
			}
			fields = append(fields, name)
		}
	}
	status := p.Status
	if sn.locked[p.PhoneNumberID] || sn.locked[p.WABAID] {
		status = "RESTRICTED"
	}
	out := make(map[string]any, len(fields)+1)
	for _, f := range fields {
		switch f {
		case "id":
		case "verified_name":
			out[f] = p.VerifiedName
		case "display_phone_number":
			out[f] = p.DisplayPhoneNumber
		case "quality_rating":
			out[f] = p.QualityRating
		case "status":
			out[f] = status
		case "code_verification_status":
			out[f] = p.CodeVerificationStatus
		case "name_status":
			out[f] = p.NameStatus
		case "new_name_status":
			out[f] = "NONE"
		case "platform_type":
			out[f] = "CLOUD_API"
		case "throughput":
			out[f] = map[string]string{"level": p.ThroughputLevel}
		case "messaging_limit_tier":
			out[f] = p.MessagingLimitTier
		case "account_mode":
			out[f] = "LIVE"
		case "is_official_business_account":
			out[f] = false
		case "is_pin_enabled":
			out[f] = true
		case "last_onboarded_time":
			out[f] = "2025-01-06T10:00:00+0000"
		case "webhook_configuration":
			out[f] = map[string]string{"application": sn.webhooks.URL}
		case "health_status":
			can := "AVAILABLE"
			if status != "CONNECTED" {
				can = "BLOCKED"
			}
			out[f] = map[string]any{"can_send_message": can, "entities": []map[string]string{
				{"entity_type": "PHONE_NUMBER", "id": p.PhoneNumberID, "can_send_message": can}}}
		}
	}
	out["id"] = p.PhoneNumberID
	writeJSON(w, http.StatusOK, out)
}

// readDebugToken serves GET /{version}/debug_token?input_token=T.
func (s *Server) readDebugToken(w http.ResponseWriter, r *http.Request) {
	sn := s.snap.Load()
	now := s.now()
	if e := sn.checkToken(bearer(r), now); e != nil {
		s.writeGraphError(w, r, e)
		return
	}
	in := r.URL.Query().Get("input_token")
	if in == "" {
		s.writeGraphError(w, r, invalidParam("(#100) The parameter input_token is required", "The parameter input_token is required."))
		return
	}
	wabas := map[string]bool{}
	for _, p := range sn.phones {
		wabas[p.WABAID] = true
	}
	if len(wabas) == 0 {
		wabas[DefaultWABAID] = true
	}
	targets := make([]string, 0, len(wabas))
	for id := range wabas {
		targets = append(targets, id)
	}
	ti := sn.tokens[in]
	if ti == nil && !sn.anyToken {
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"error":    map[string]any{"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
			"is_valid": false,
			"scopes":   []string{},
		}})
		return
	}
	scopes := defaultScopes
	var expires int64
	if ti != nil {
		scopes = ti.scopes
		if ti.expiresAt != nil {
			expires = ti.expiresAt.Unix()
		}
	}
	data := map[string]any{
		"app_id":                 sn.app.ID,
		"type":                   "SYSTEM_USER",
		"application":            sn.app.Name,
		"data_access_expires_at": 0,
		"expires_at":             expires,
		"is_valid":               true,
		"issued_at":              now.Add(-24 * 60 * 60 * 1e9).Unix(),
		"scopes":                 scopes,
		"user_id":                "100000000000001",
	}
	var granular []map[string]any
	for _, sc := range scopes {
		if strings.HasPrefix(sc, "whatsapp_business_") {
			granular = append(granular, map[string]any{"scope": sc, "target_ids": targets})
		}
	}
	if granular != nil {
		data["granular_scopes"] = granular
	}
	if ti != nil && ti.revoked {
		data["is_valid"] = false
		data["error"] = map[string]any{"code": 190, "subcode": 460,
			"message": "The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."}
	} else if ti != nil && ti.expiresAt != nil && !now.Before(*ti.expiresAt) {
		data["is_valid"] = false
		data["error"] = map[string]any{"code": 190, "subcode": 463,
			"message": strings.TrimPrefix(expiredMessage(*ti.expiresAt, now), "Error validating access token: ")}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// readTemplates serves GET /{version}/{waba_id}/message_templates.
func (s *Server) readTemplates(w http.ResponseWriter, r *http.Request, waba string) {
	sn := s.snap.Load()
	if e := sn.checkToken(bearer(r), s.now()); e != nil {
		s.writeGraphError(w, r, e)
		return
	}
	if !sn.wabaKnown(waba) && len(sn.phones) > 0 {
		s.writeGraphError(w, r, unknownObject("get", waba))
		return
	}
	q := r.URL.Query()
	name, lang, status := q.Get("name"), q.Get("language"), q.Get("status")
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = 25
	}
	data := []map[string]any{}
	for _, ti := range sn.templateList {
		if ti.WABAID != "" && ti.WABAID != waba {
			continue
		}
		if name != "" && !strings.Contains(ti.Name, name) {
			continue
		}
		if lang != "" && ti.language != lang {
			continue
		}
		if status != "" && !strings.EqualFold(ti.Status, status) {
			continue
		}
		if len(data) < limit {
			data = append(data, templateJSON(ti))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data,
		"paging": map[string]any{"cursors": map[string]string{"before": "MAZDZD", "after": "MjQZD"}}})
}

func templateJSON(t *templateInfo) map[string]any {
	text := t.Body
	if text == "" {
		text = "This is the " + t.Name + " message"
		for i := 1; i <= t.BodyParams; i++ {
			text += " {{" + strconv.Itoa(i) + "}}"
		}
		text += "."
	}
	body := map[string]any{"type": "BODY", "text": text}
	if t.BodyParams > 0 {
		ex := make([]string, t.BodyParams)
		for i := range ex {
			ex[i] = "example" + strconv.Itoa(i+1)
		}
		body["example"] = map[string]any{"body_text": [][]string{ex}}
	}
	return map[string]any{
		"name":                t.Name,
		"parameter_format":    "POSITIONAL",
		"components":          []any{body},
		"language":            t.language,
		"status":              t.Status,
		"category":            t.Category,
		"sub_category":        "CUSTOM",
		"id":                  t.id,
		"quality_score":       map[string]any{"score": qualityOf(t.Status)},
		"previous_category":   nil,
		"correct_category":    nil,
		"rejected_reason":     rejected(t.Status),
		"library_template_id": nil,
	}
}

func qualityOf(status string) string {
	switch status {
	case "PAUSED", "DISABLED":
		return "RED"
	case "APPROVED":
		return "GREEN"
	}
	return "UNKNOWN"
}

func rejected(status string) string {
	if status == "REJECTED" {
		return "INVALID_FORMAT"
	}
	return "NONE"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"error":"` + err.Error() + `"}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	graphHeaders(h, newTraceID())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
