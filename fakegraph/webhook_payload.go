package fakegraph

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// Sign returns the X-Hub-Signature-256 value of a webhook body:
// "sha256=" and the hex HMAC-SHA256 of the raw body keyed with the app
// secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// The webhook payload, as Meta sends it.
type (
	hookPayload struct {
		Object string      `json:"object"`
		Entry  []hookEntry `json:"entry"`
	}
	hookEntry struct {
		ID      string       `json:"id"`
		Changes []hookChange `json:"changes"`
	}
	hookChange struct {
		Value hookValue `json:"value"`
		Field string    `json:"field"`
	}
	hookValue struct {
		MessagingProduct string        `json:"messaging_product"`
		Metadata         hookMetadata  `json:"metadata"`
		Contacts         []hookContact `json:"contacts,omitempty"`
		Messages         []hookMessage `json:"messages,omitempty"`
		Statuses         []hookStatus  `json:"statuses,omitempty"`
	}
	hookMetadata struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	}
	hookContact struct {
		Profile hookProfile `json:"profile"`
		WAID    string      `json:"wa_id"`
	}
	hookProfile struct {
		Name string `json:"name"`
	}
	hookMessage struct {
		From      string    `json:"from"`
		ID        string    `json:"id"`
		Timestamp string    `json:"timestamp"`
		Type      string    `json:"type"`
		Text      *hookText `json:"text,omitempty"`
	}
	hookText struct {
		Body string `json:"body"`
	}
	hookStatus struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		Timestamp   string `json:"timestamp"`
		RecipientID string `json:"recipient_id,omitempty"`
		// RecipientUserID is the BSUID of a send to one (no recipient_id).
		RecipientUserID string            `json:"recipient_user_id,omitempty"`
		Conversation    *hookConversation `json:"conversation,omitempty"`
		Pricing         *hookPricing      `json:"pricing,omitempty"`
		Errors          []hookError       `json:"errors,omitempty"`
	}
	hookConversation struct {
		ID                  string     `json:"id"`
		ExpirationTimestamp string     `json:"expiration_timestamp,omitempty"`
		Origin              hookOrigin `json:"origin"`
	}
	hookOrigin struct {
		Type string `json:"type"`
	}
	hookPricing struct {
		Billable     bool   `json:"billable"`
		PricingModel string `json:"pricing_model"`
		Category     string `json:"category"`
		Type         string `json:"type"`
	}
	hookError struct {
		Code      int           `json:"code"`
		Title     string        `json:"title"`
		Message   string        `json:"message"`
		ErrorData hookErrorData `json:"error_data"`
		Href      string        `json:"href"`
	}
	hookErrorData struct {
		Details string `json:"details"`
	}
)

// statusBody is the webhook of one status of an accepted message.
func statusBody(phone *phoneInfo, send *Send, status, category string, code *int, details string, now time.Time) []byte {
	st := hookStatus{ID: send.WAMID, Status: status, Timestamp: strconv.FormatInt(now.Unix(), 10), RecipientID: send.To}
	if isBSUID(send.To) {
		st.RecipientID, st.RecipientUserID = "", send.To
	}
	if code != nil {
		ci := Lookup(*code)
		if details == "" {
			details = ci.Details
		}
		st.Errors = []hookError{{Code: *code, Title: ci.Title, Message: ci.Title, ErrorData: hookErrorData{Details: details},
			Href: "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}}
	} else {
		st.Pricing = &hookPricing{Billable: category != "service", PricingModel: "PMP", Category: category, Type: "regular"}
		if category == "service" {
			st.Pricing.Type = "free_customer_service"
		}
		if status == "sent" {
			st.Conversation = &hookConversation{ID: conversationID(), ExpirationTimestamp: strconv.FormatInt(now.Add(24*time.Hour).Unix(), 10),
				Origin: hookOrigin{Type: category}}
		}
	}
	waba := DefaultWABAID
	display := ""
	if phone != nil {
		waba, display = phone.WABAID, phone.displayDigits
	}
	body, _ := json.Marshal(hookPayload{Object: "whatsapp_business_account", Entry: []hookEntry{{
		ID: waba, Changes: []hookChange{{Field: "messages", Value: hookValue{
			MessagingProduct: "whatsapp",
			Metadata:         hookMetadata{DisplayPhoneNumber: display, PhoneNumberID: send.PhoneNumberID},
			Statuses:         []hookStatus{st},
		}}},
	}}})
	return body
}

func conversationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
