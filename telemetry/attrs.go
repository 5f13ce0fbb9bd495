package telemetry

import "go.opentelemetry.io/otel/attribute"

func serviceName(s string) attribute.KeyValue { return attribute.String("service.name", s) }

// Attribute keys of the attempt span (SPEC §5).
const (
	AttrMessagingSystem = attribute.Key("messaging.system")
	AttrDestination     = attribute.Key("messaging.destination.name")
	AttrMessageID       = attribute.Key("messaging.message.id")
	AttrOperation       = attribute.Key("messaging.operation.type")
	AttrAttempt         = attribute.Key("waq.attempt")
	AttrAction          = attribute.Key("waq.policy.action")
	AttrDLQReason       = attribute.Key("waq.dlq.reason")
	AttrReplay          = attribute.Key("waq.replay")
	AttrRecipient       = attribute.Key("waq.recipient.hash")
	AttrPhoneNumberID   = attribute.Key("whatsapp.phone_number_id")
	AttrWAMID           = attribute.Key("whatsapp.message.id")
	AttrErrorCode       = attribute.Key("whatsapp.error.code")
	AttrErrorSubcode    = attribute.Key("whatsapp.error.subcode")
	AttrFBTraceID       = attribute.Key("whatsapp.fbtrace_id")
	AttrTemplate        = attribute.Key("whatsapp.template.name")
	AttrHTTPStatus      = attribute.Key("http.response.status_code")
	AttrStatus          = attribute.Key("whatsapp.status")
	// AttrAPI is the Graph API endpoint of a send other than /messages
	// ("marketing_messages").
	AttrAPI = attribute.Key("waq.api")
	// AttrMessageStatus is the send answer's messages[0].message_status
	// (accepted, held_for_quality_assessment, paused).
	AttrMessageStatus = attribute.Key("whatsapp.message_status")
	// AttrPricingCategory and AttrBillable are a status's pricing.
	AttrPricingCategory = attribute.Key("whatsapp.pricing.category")
	AttrBillable        = attribute.Key("whatsapp.pricing.billable")
	AttrMetadataPrefix  = "waq.metadata."
)
