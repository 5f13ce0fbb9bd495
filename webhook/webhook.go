// Package webhook receives Meta's status webhooks (SPEC §9). The HTTP
// handler checks the subscription request and each POST's
// X-Hub-Signature-256, splits the body into one event per status, and
// answers 200 only once every event is durably on the WAQ_EVENTS stream: a
// crash loses none, and Meta's redeliveries are de-duplicated (by JetStream
// within its window, by the worker's ledger after it). The worker consumes
// the events and applies the same policy as to a synchronous error.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultSubjectPrefix is the subject prefix of status events:
// waq.status.{phone_number_id}.
const DefaultSubjectPrefix = "waq.status"

// MaxBody bounds a webhook body. Meta batches up to a few hundred statuses
// in one POST; 1 MiB is far above that.
const MaxBody = 1 << 20

// Status is one entry of a webhook's statuses array, with the number it
// belongs to: the event the worker processes.
type Status struct {
	// WAMID is statuses[].id.
	WAMID string `json:"id"`
	// Status is sent, delivered, read or failed (others are kept as they come).
	Status string `json:"status"`
	// Timestamp is statuses[].timestamp, Unix seconds as Meta sends it.
	Timestamp   string `json:"timestamp"`
	RecipientID string `json:"recipient_id,omitempty"`
	// RecipientUserID and RecipientParentUserID are the recipient's
	// business-scoped user ID and parent one, when Meta gives them (a
	// send addressed by one has no recipient_id).
	RecipientUserID       string `json:"recipient_user_id,omitempty"`
	RecipientParentUserID string `json:"recipient_parent_user_id,omitempty"`
	// Pricing is statuses[].pricing, when given.
	Pricing *Pricing `json:"pricing,omitempty"`
	// Errors holds the reasons of a failed status.
	Errors []StatusError `json:"errors,omitempty"`
	// PhoneNumberID is value.metadata.phone_number_id of the change.
	PhoneNumberID string `json:"phone_number_id"`
	// WABAID is entry[].id.
	WABAID string `json:"waba_id,omitempty"`
	// BizOpaqueCallbackData is echoed from the send, when it had one.
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data,omitempty"`
}

// Pricing is statuses[].pricing: what Meta charges for the message.
type Pricing struct {
	Billable     bool   `json:"billable"`
	PricingModel string `json:"pricing_model,omitempty"`
	Category     string `json:"category,omitempty"`
	Type         string `json:"type,omitempty"`
}

// SystemMessageTypes are the system messages (messages[].system.type)
// counted by name: a user's business-scoped user ID or number changed.
// Others are counted as "other".
var SystemMessageTypes = []string{"user_changed_user_id", "user_changed_number"}

// StatusError is one entry of statuses[].errors.
type StatusError struct {
	Code      int    `json:"code"`
	Title     string `json:"title,omitempty"`
	Message   string `json:"message,omitempty"`
	ErrorData *struct {
		Details string `json:"details,omitempty"`
	} `json:"error_data,omitempty"`
	Href string `json:"href,omitempty"`
}

// Details is error_data.details, or "".
func (e StatusError) Details() string {
	if e.ErrorData == nil {
		return ""
	}
	return e.ErrorData.Details
}

// Time is the status's timestamp, or the zero time when it does not parse.
func (s Status) Time() time.Time {
	n, err := strconv.ParseInt(s.Timestamp, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// DedupID identifies one status of one message, the same for every
// redelivery of it.
func (s Status) DedupID() string {
	return s.WAMID + "/" + s.Status + "/" + s.Timestamp
}

type payload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Metadata struct {
					PhoneNumberID string `json:"phone_number_id"`
				} `json:"metadata"`
				Statuses []struct {
					ID                    string        `json:"id"`
					Status                string        `json:"status"`
					Timestamp             json.Number   `json:"timestamp"`
					RecipientID           string        `json:"recipient_id"`
					RecipientUserID       string        `json:"recipient_user_id"`
					RecipientParentUserID string        `json:"recipient_parent_user_id"`
					Pricing               lenient       `json:"pricing"`
					Errors                []StatusError `json:"errors"`
					BizOpaqueCallbackData string        `json:"biz_opaque_callback_data"`
				} `json:"statuses"`
				Messages []struct {
					Type   string  `json:"type"`
					System lenient `json:"system"`
				} `json:"messages"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// ErrNotWhatsApp is a body whose object is not whatsapp_business_account.
var ErrNotWhatsApp = errors.New("webhook: object is not whatsapp_business_account")

// lenient keeps a value's raw JSON, to be read on its own: a field of an
// unexpected shape there does not make the whole body unreadable.
type lenient json.RawMessage

// UnmarshalJSON keeps the raw value.
func (l *lenient) UnmarshalJSON(b []byte) error {
	*l = append((*l)[0:0], b...)
	return nil
}

// pricing reads a status's pricing; nil when absent or not an object of
// that shape.
func (l lenient) pricing() *Pricing {
	if len(l) == 0 || string(l) == "null" {
		return nil
	}
	var p Pricing
	if json.Unmarshal(l, &p) != nil {
		return nil
	}
	return &p
}

// systemType is a system message's type, "other" for another or none.
func (l lenient) systemType() string {
	var v struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(l, &v)
	for _, t := range SystemMessageTypes {
		if v.Type == t {
			return t
		}
	}
	return "other"
}

// Parse reads the statuses of a webhook body. Other fields of a change
// (inbound messages, errors) are counted in others and not returned. A
// status without an id or a status is skipped and counted in others too.
func Parse(body []byte) (statuses []Status, others int, err error) {
	statuses, others, _, err = ParseSystem(body)
	return statuses, others, err
}

// ParseSystem is Parse that also returns the type of each system message
// (user_changed_user_id, user_changed_number, other): news that a user's
// identifiers changed, counted, never an error.
func ParseSystem(body []byte) (statuses []Status, others int, system []string, err error) {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, 0, nil, fmt.Errorf("webhook: body is not a webhook JSON object: %w", err)
	}
	if p.Object != "whatsapp_business_account" {
		return nil, 0, nil, ErrNotWhatsApp
	}
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			if c.Field != "" && c.Field != "messages" {
				others++
				continue
			}
			for _, st := range c.Value.Statuses {
				if st.ID == "" || st.Status == "" || c.Value.Metadata.PhoneNumberID == "" || !validSubjectToken(c.Value.Metadata.PhoneNumberID) {
					others++
					continue
				}
				statuses = append(statuses, Status{
					WAMID: st.ID, Status: st.Status, Timestamp: st.Timestamp.String(), RecipientID: st.RecipientID,
					RecipientUserID: st.RecipientUserID, RecipientParentUserID: st.RecipientParentUserID, Pricing: st.Pricing.pricing(),
					Errors: st.Errors, PhoneNumberID: c.Value.Metadata.PhoneNumberID, WABAID: e.ID,
					BizOpaqueCallbackData: st.BizOpaqueCallbackData,
				})
			}
			for _, m := range c.Value.Messages {
				if m.Type == "system" {
					system = append(system, m.System.systemType())
				}
			}
			if len(c.Value.Statuses) == 0 {
				others++
			}
		}
	}
	return statuses, others, system, nil
}

// validSubjectToken keeps a phone number id usable as a NATS subject token.
func validSubjectToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidSignature checks X-Hub-Signature-256 ("sha256=" and the hex
// HMAC-SHA256 of body with secret) in constant time.
func ValidSignature(secret string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Handler serves /webhook.
type Handler struct {
	// AppSecret signs POST bodies; VerifyToken answers the subscription
	// check. Both are required.
	AppSecret   string
	VerifyToken string
	// JS stores the events; SubjectPrefix defaults to "waq.status".
	JS            jetstream.JetStream
	SubjectPrefix string
	Log           *slog.Logger
	// Count, when set, is told of every status and what became of it
	// ("stored", "invalid_signature", ...): the metric hook.
	Count func(result string, n int)
	// System, when set, is told of each system message's type.
	System func(typ string)
}

func (h *Handler) count(result string, n int) {
	if h.Count != nil && n > 0 {
		h.Count(result, n)
	}
}

// ServeHTTP answers GET (subscription check) and POST (events).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		h.verify(w, r)
	case http.MethodPost:
		h.receive(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// verify answers Meta's subscription check: hub.mode=subscribe and the
// verify token, echoing hub.challenge.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("hub.verify_token")
	if q.Get("hub.mode") != "subscribe" || subtle.ConstantTimeCompare([]byte(token), []byte(h.VerifyToken)) != 1 {
		http.Error(w, "verification failed", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, q.Get("hub.challenge"))
}

func (h *Handler) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.count("too_large", 1)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read body", http.StatusBadRequest)
		return
	}
	if !ValidSignature(h.AppSecret, body, r.Header.Get("X-Hub-Signature-256")) {
		h.count("invalid_signature", 1)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	statuses, others, system, err := ParseSystem(body)
	if err != nil {
		// Signed by Meta but not what we expect: answer 200 so that Meta
		// does not redeliver it for a week; there is nothing to act on.
		h.count("unparsed", 1)
		if h.Log != nil {
			h.Log.Warn("webhook body not understood; ignored", "error", err, "bytes", len(body))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	accounts, bad, _ := ParseAccount(body) // the body decoded above: no error
	h.count("other", others-len(accounts)-bad)
	h.count("invalid", bad)
	if err := h.storeAccount(r.Context(), accounts); err != nil {
		if h.Log != nil {
			h.Log.Error("account events not stored; answering 503 so that Meta redelivers", "error", err, "events", len(accounts))
		}
		http.Error(w, "events not stored", http.StatusServiceUnavailable)
		return
	}
	h.count("account", len(accounts))
	if h.System != nil {
		for _, typ := range system {
			h.System(typ)
		}
	}
	if err := h.store(r.Context(), statuses); err != nil {
		if h.Log != nil {
			h.Log.Error("webhook events not stored; answering 503 so that Meta redelivers", "error", err, "statuses", len(statuses))
		}
		http.Error(w, "events not stored", http.StatusServiceUnavailable)
		return
	}
	h.count("stored", len(statuses))
	w.WriteHeader(http.StatusOK)
}

// store publishes one event per status and waits for JetStream to have
// stored every one of them.
func (h *Handler) store(ctx context.Context, statuses []Status) error {
	if len(statuses) == 0 {
		return nil
	}
	msgs := make([]*nats.Msg, 0, len(statuses))
	for _, st := range statuses {
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		msg := nats.NewMsg(h.prefix() + "." + st.PhoneNumberID)
		msg.Data = data
		msg.Header.Set(nats.MsgIdHdr, st.DedupID())
		msgs = append(msgs, msg)
	}
	return h.publish(ctx, msgs)
}

func (h *Handler) prefix() string {
	if h.SubjectPrefix == "" {
		return DefaultSubjectPrefix
	}
	return h.SubjectPrefix
}

// storeAccount publishes one event per account change, on
// {prefix}.account.{waba_id}, and waits for JetStream to have stored them.
func (h *Handler) storeAccount(ctx context.Context, events []AccountEvent) error {
	msgs := make([]*nats.Msg, 0, len(events))
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		msg := nats.NewMsg(h.prefix() + "." + AccountSubjectToken + "." + e.WABAID)
		msg.Data = data
		msg.Header.Set(nats.MsgIdHdr, e.DedupID())
		msgs = append(msgs, msg)
	}
	return h.publish(ctx, msgs)
}

// publish stores msgs and waits for JetStream to have every one of them.
func (h *Handler) publish(ctx context.Context, msgs []*nats.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, msg := range msgs {
		f, err := h.JS.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish event: %w", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("store event: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("store event: %w", ctx.Err())
		}
	}
	return nil
}

// DecodeEvent reads an event as stored on the stream.
func DecodeEvent(data []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return Status{}, fmt.Errorf("status event: %w", err)
	}
	if s.WAMID == "" || s.Status == "" {
		return Status{}, errors.New("status event: no id or status")
	}
	return s, nil
}
