package ledger

// What Meta says of a sent message besides its delivery status: the send
// answer's message_status, and the pricing its status webhooks carry. The
// compact record keeps both in its last two bytes (encodeRecord), by code:
//
//	38  bit 7: pricing recorded; bit 6: billable; bits 4-5: pricing_model;
//	    bits 0-3: category
//	39  bits 3-5: message_status; bits 0-2: pricing type
//
// A value Meta adds later than these lists is kept as "other".

// Pricing is a status webhook's pricing object: what Meta charges for the
// message (per-message pricing since July 2025).
type Pricing struct {
	Billable bool `json:"billable"`
	// PricingModel is "PMP" (per-message pricing) or "CBP" (conversation
	// based, before July 2025).
	PricingModel string `json:"pricing_model,omitempty"`
	// Category is "marketing", "utility", "authentication",
	// "authentication_international", "service", "marketing_lite" or
	// "referral_conversion".
	Category string `json:"category,omitempty"`
	// Type is "regular", "free_customer_service" or "free_entry_point".
	Type string `json:"type,omitempty"`
}

// Other stands for a pricing or message_status value the record has no
// code for.
const Other = "other"

// The values the record keeps by code: index i is code i; "" (code 0) is
// none given.
var (
	pricingCategories = []string{"", "marketing", "utility", "authentication", "authentication_international", "service", "marketing_lite", "referral_conversion"}
	pricingModels     = []string{"", "PMP", "CBP"}
	pricingTypes      = []string{"", "regular", "free_customer_service", "free_entry_point"}
	messageStatuses   = []string{"", "accepted", "held_for_quality_assessment", "paused"}
)

// The largest code of each field, given to a value no list has.
const (
	otherCategory = 15
	otherModel    = 3
	otherSmall    = 7 // a 3-bit field: pricing type, message_status
)

func codeOf(list []string, v string, other byte) byte {
	for i, s := range list {
		if s == v {
			return byte(i)
		}
	}
	return other
}

func nameOf(list []string, c byte) string {
	if int(c) < len(list) {
		return list[c]
	}
	return Other
}

// pricingBytes is p as the record keeps it: byte 38, and the pricing type
// for byte 39's low bits.
func pricingBytes(p Pricing) (byte, byte) {
	b := byte(0x80) | codeOf(pricingCategories, p.Category, otherCategory) | codeOf(pricingModels, p.PricingModel, otherModel)<<4
	if p.Billable {
		b |= 0x40
	}
	return b, codeOf(pricingTypes, p.Type, otherSmall)
}

// decodePricing reads bytes 38 and 39 of a record; nil when no pricing was
// recorded.
func decodePricing(b38, b39 byte) *Pricing {
	if b38&0x80 == 0 {
		return nil
	}
	return &Pricing{
		Billable:     b38&0x40 != 0,
		PricingModel: nameOf(pricingModels, b38>>4&3),
		Category:     nameOf(pricingCategories, b38&15),
		Type:         nameOf(pricingTypes, b39&7),
	}
}

// messageStatusCode is a send answer's message_status as byte 39's bits.
func messageStatusCode(s string) byte {
	return codeOf(messageStatuses, s, otherSmall) << 3
}

func messageStatusName(b39 byte) string { return nameOf(messageStatuses, b39>>3&7) }

// Known is p with each value the record has no code for replaced by Other:
// what Load gives back, and a bounded metric label.
func (p Pricing) Known() Pricing {
	b38, b39 := pricingBytes(p)
	return *decodePricing(b38, b39)
}

// KnownMessageStatus is s, or Other when the record has no code for it.
func KnownMessageStatus(s string) string { return messageStatusName(messageStatusCode(s)) }
