package queue

import "unicode/utf8"

// Meta's documented size limits of a message, checked before any send: a
// message past one is parked as invalid, naming the limit, and never sent.
const (
	// MaxTextBody is the most characters of text.body.
	MaxTextBody = 4096
	// MaxCaption is the most characters of an image, video or document
	// caption.
	MaxCaption = 1024
)

// The product_policy values of the Marketing Messages API.
const (
	// ProductPolicyFallback lets Meta send through the Cloud API when the
	// business is not onboarded to the Marketing Messages API (Meta's
	// default).
	ProductPolicyFallback = "CLOUD_API_FALLBACK"
	// ProductPolicyStrict never falls back to the Cloud API.
	ProductPolicyStrict = "STRICT"
)

// textPart is message.text: only the body's length matters to waq.
type textPart struct {
	Body string `json:"body"`
}

// mediaPart is message.image, .video or .document: only the caption's
// length matters to waq.
type mediaPart struct {
	Caption string `json:"caption"`
}

// checkLimits applies Meta's size limits to the payload of type typ.
func (m *messageFields) checkLimits(typ string) error {
	var media *mediaPart
	switch typ {
	case "text":
		if n := utf8.RuneCountInString(m.Text.Body); n > MaxTextBody {
			return invalid("message.text.body", "%d characters, more than Meta's limit of %d", n, MaxTextBody)
		}
		return nil
	case "image":
		media = m.Image
	case "video":
		media = m.Video
	case "document":
		media = m.Document
	default:
		return nil
	}
	if n := utf8.RuneCountInString(media.Caption); n > MaxCaption {
		return invalid("message."+typ+".caption", "%d characters, more than Meta's limit of %d", n, MaxCaption)
	}
	return nil
}
