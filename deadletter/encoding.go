package deadletter

// The stored form of an entry (format 1): one Redis string, a header of the
// index values that the scripts read, then the entry's JSON compressed with
// zstd against a fixed dictionary of what entries have in common (their
// keys, Meta's error texts). A parked job costs about a third of the JSON
// hash it was before (entries written before are still read: legacy.go).
//
//	byte 0      format (1)
//	then        reason, code, phone number id, template, addressee,
//	            generation: each a 2-byte big-endian length and the bytes
//	then        zstd frame of the entry's JSON (dictionary id 1)
//
// The dictionary may never change for format 1: entries written with it
// are read for the whole retention. A better one is a new format byte.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// formatZstd1 is the first byte of an entry stored as header + zstd frame.
const formatZstd1 = 1

// headerFields are the index values a stored entry starts with, in order:
// the names the scripts and scan fields use (r, c, p, t, x, g).
const headerFields = 6

// entryDict is the raw zstd dictionary of format 1: a typical entry, its
// most common strings last (the nearest are the cheapest to refer to).
const entryDict = `{"error":"Post \"https://graph.facebook.com/v23.0/messages\": context deadline exceeded","delay_ms":1000,` +
	`"title":"Message undeliverable","details":"Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number",` +
	`"title":"Re-engagement message","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number.",` +
	`"title":"Template name does not exist in the translation","details":"The template does not exist in the specified language or the template has not been approved.",` +
	`"title":"Parameter value is not valid","title":"Invalid parameter","title":"Service unavailable","title":"Rate limit hit","title":"Something went wrong",` +
	`"message":"(#131047) Re-engagement message","message":"(#132001) Template name does not exist in the translation","message":"(#131026) Message undeliverable",` +
	`"type":"OAuthException","error_user_title":"","error_user_msg":"","transport":"","outcome":"throttled","action":"retry","outcome":"paused","action":"pause",` +
	`{"type":"image","image":{"link":"https://","caption":""}},{"type":"document","document":{"link":"https://","filename":""}},` +
	`"type":"interactive","interactive":{"type":"button","body":{"text":""},"action":{"buttons":[{"type":"reply","reply":{"id":"","title":""}}]}}},` +
	`"components":[{"type":"header","parameters":[{"type":"image","image":{"link":""}}]},{"type":"body","parameters":[{"type":"text","text":""},{"type":"currency"}]},{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":""}]}]}},` +
	`"recipient_type":"individual","recipient":"","context":{"message_id":"wamid.HBgL"},"biz_opaque_callback_data":"","not_after":"2026-01-01T00:00:00Z",` +
	`{"id":"0190a8b2-7c4e-7d2a-9f10-3b5e1c2d4a6f","reason":"retries_exhausted","problem":"the policy parks ","job":{"id":"0190a8b2-7c4e-7d2a-9f10-3b5e1c2d4a6f","phone_number_id":"106540352242922",` +
	`"message":{"messaging_product":"whatsapp","recipient_type":"individual","to":"15550001234","type":"text","text":{"preview_url":false,"body":"Your order has shipped"}},` +
	`"message":{"messaging_product":"whatsapp","to":"15550001234","type":"template","template":{"name":"order_update","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":""}]}]}},` +
	`"metadata":{"tenant":"","campaign":""}},"subject":"waq.send.106540352242922","phone_number_id":"106540352242922","to":"15550001234","type":"text","type":"template","template":"order_update","language":"en_US","metadata":{"campaign":"","tenant":""},` +
	`"last_error":{"http_status":400,"code":131000,"type":"OAuthException","title":"Message failed to send","message":"Message failed to send because of an error","details":"","error_subcode":2494010,"fbtrace_id":"AbCdEfGhIjKlMnOpQrStUvW"},` +
	`"attempts":[{"at":"2026-01-01T00:00:00.000000000Z","outcome":"failed","action":"retry","http_status":500,"code":131000,"fbtrace_id":"AbCdEfGhIjKlMnOpQrStUvW","delay_ms":2000,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","worker":"worker-"},` +
	`{"at":"2026-01-01T00:00:00.000000000Z","gen":1,"outcome":"failed","action":"park","http_status":400,"code":131000,"fbtrace_id":"AbCdEfGhIjKlMnOpQrStUvW","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","worker":"worker-"}],` +
	`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","parked_at":"2026-01-01T00:00:00.000000000Z","replayed":0}`

var (
	codecOnce sync.Once
	encoder   *zstd.Encoder
	decoder   *zstd.Decoder
	codecErr  error
)

// codec returns the encoder and decoder of format 1 (safe for concurrent
// use: EncodeAll and DecodeAll only).
func codec() (*zstd.Encoder, *zstd.Decoder, error) {
	codecOnce.Do(func() {
		encoder, codecErr = zstd.NewWriter(nil, zstd.WithEncoderDictRaw(1, []byte(entryDict)),
			zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderCRC(false),
			zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if codecErr != nil {
			return
		}
		// Entries are small: a bounded window keeps a hostile frame from
		// asking for much memory.
		decoder, codecErr = zstd.NewReader(nil, zstd.WithDecoderDictRaw(1, []byte(entryDict)),
			zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(8<<20))
	})
	return encoder, decoder, codecErr
}

// encode is the stored form of e.
func (e *Entry) encode() ([]byte, error) {
	js, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	enc, _, err := codec()
	if err != nil {
		return nil, err
	}
	head := e.header()
	n := 1
	for _, f := range head {
		if len(f) > 0xffff {
			return nil, fmt.Errorf("index value of %d bytes", len(f))
		}
		n += 2 + len(f)
	}
	out := make([]byte, 0, n+len(js)/2)
	out = append(out, formatZstd1)
	for _, f := range head {
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return enc.EncodeAll(js, out), nil
}

// header is the index values of e, in headerFields order.
func (e *Entry) header() [headerFields]string {
	return [headerFields]string{e.Reason, e.codeKey(), e.PhoneNumberID, e.Template, e.Addressee(), strconv.Itoa(e.Replayed)}
}

// decodeEntry reads an entry in any stored form: format 1, or the JSON of
// entries parked before it.
func decodeEntry(data []byte) (*Entry, error) {
	if len(data) == 0 {
		return nil, errors.New("empty entry")
	}
	js := data
	if data[0] != '{' {
		if data[0] != formatZstd1 {
			return nil, fmt.Errorf("unknown entry format %d", data[0])
		}
		_, body, err := splitHeader(data)
		if err != nil {
			return nil, err
		}
		_, dec, err := codec()
		if err != nil {
			return nil, err
		}
		if js, err = dec.DecodeAll(body, nil); err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	}
	var e Entry
	if err := json.Unmarshal(js, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// splitHeader parses the header of a format 1 entry.
func splitHeader(data []byte) (head [headerFields]string, body []byte, err error) {
	pos := 1
	for i := range head {
		if pos+2 > len(data) {
			return head, nil, errors.New("entry header cut short")
		}
		n := int(binary.BigEndian.Uint16(data[pos:]))
		pos += 2
		if pos+n > len(data) {
			return head, nil, errors.New("entry header cut short")
		}
		head[i] = string(data[pos : pos+n])
		pos += n
	}
	return head, data[pos:], nil
}

// loadLua reads an entry's index values in a script, from either stored
// form: the format 1 string at P:v:ID, or the hash at P:e:ID of entries
// parked before it. It returns the fields by name (r reason, c code, p
// number, t template, x addressee, g generation, d the stored entry for
// decodeEntry) and the key, or nil.
const loadLua = `
local names = {'r', 'c', 'p', 't', 'x', 'g'}
local function load(P, id)
  local vk = P .. ':v:' .. id
  local v = redis.call('GET', vk)
  if v then
    local f, pos = {d = v}, 2
    for _, name in ipairs(names) do
      local n = string.byte(v, pos) * 256 + string.byte(v, pos + 1)
      f[name] = string.sub(v, pos + 2, pos + 1 + n)
      pos = pos + 2 + n
    end
    return f, vk
  end
  local ek = P .. ':e:' .. id
  local o = redis.call('HMGET', ek, 'r', 'c', 'p', 't', 'x', 'g', 'd')
  if not o[1] then return nil end
  local f = {d = o[7] or ''}
  for i, name in ipairs(names) do f[name] = o[i] or '' end
  return f, ek
end
`
