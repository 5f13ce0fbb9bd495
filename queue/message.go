package queue

import "encoding/json"

// The message objects waq's own producers build (`waq send`, the demo load
// of `waq dev`, `waq bench`): a free-form text or a template with text body
// parameters, as the Graph API's POST /{phone-number-id}/messages takes
// them. A job may carry any other message object a producer writes itself.

// TextMessage returns the message object of a free-form text message to
// the recipient to (digits with country code). Meta delivers it only
// inside the 24-hour customer service window.
func TextMessage(to, body string) json.RawMessage {
	return marshalMessage(message{MessagingProduct: "whatsapp", RecipientType: "individual", To: to, Type: "text", Text: &textBody{Body: body}})
}

// TemplateMessage returns the message object of the template name in the
// language code (like en_US) to the recipient to, with params as its body
// parameters (text, in order); without params it has no components.
func TemplateMessage(to, name, language string, params ...string) json.RawMessage {
	t := &templateBody{Name: name, Language: templateLanguage{Code: language}}
	if len(params) > 0 {
		ps := make([]templateParam, len(params))
		for i, p := range params {
			ps[i] = templateParam{Type: "text", Text: p}
		}
		t.Components = []templateComponent{{Type: "body", Parameters: ps}}
	}
	return marshalMessage(message{MessagingProduct: "whatsapp", RecipientType: "individual", To: to, Type: "template", Template: t})
}

// message is the part of the Graph API's message object these build, in
// the order Meta's examples write it.
type message struct {
	MessagingProduct string        `json:"messaging_product"`
	RecipientType    string        `json:"recipient_type"`
	To               string        `json:"to"`
	Type             string        `json:"type"`
	Text             *textBody     `json:"text,omitempty"`
	Template         *templateBody `json:"template,omitempty"`
}

type textBody struct {
	Body string `json:"body"`
}

type templateBody struct {
	Name       string              `json:"name"`
	Language   templateLanguage    `json:"language"`
	Components []templateComponent `json:"components,omitempty"`
}

type templateLanguage struct {
	Code string `json:"code"`
}

type templateComponent struct {
	Type       string          `json:"type"`
	Parameters []templateParam `json:"parameters"`
}

type templateParam struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// marshalMessage encodes m; its fields are strings and slices of them, so
// encoding cannot fail.
func marshalMessage(m message) json.RawMessage {
	b, err := json.Marshal(m)
	if err != nil {
		panic("queue: message object: " + err.Error())
	}
	return b
}
