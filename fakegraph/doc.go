// Package fakegraph is waq's local simulator of Meta's Graph API: the
// WhatsApp Cloud API messages endpoint, the read endpoints `waq doctor`
// checks, and the status webhooks Meta sends back. Every test, demo and
// benchmark of the project talks to it instead of Meta, so it answers the way
// Meta documents:
//
//   - POST /{version}/{phone_number_id}/messages validates the body like Meta
//     (messaging_product, to or recipient, type, the object the type names)
//     and accepts with a fresh wamid and messages[].message_status
//     (accepted, or held_for_quality_assessment or paused when a rule says
//     so), or fails with Meta's error body: an "error" object
//     with message "(#code) title", type, code, error_subcode when there is
//     one, error_data.details, and a fresh fbtrace_id, at the HTTP status Meta
//     documents for that code (see Codes).
//   - POST /{version}/{phone_number_id}/marketing_messages is the Marketing
//     Messages API: the same body and answer, marketing templates only
//     (100 otherwise), product_policy CLOUD_API_FALLBACK or STRICT; its
//     status webhooks are priced as marketing_lite.
//   - A message may name its recipient by business-scoped user ID
//     ("recipient": "US.13491208655302741918") instead of "to" ("to" wins
//     when both are there); the answer then has contacts[].user_id and no
//     wa_id, status webhooks recipient_user_id. An authentication template
//     to a BSUID fails with 131062; a number with allowed_recipients (a
//     test number) fails others with 131030.
//   - Tokens are checked (190, 401 OAuthException; subcode 463 when expired).
//   - A Scenario scripts everything else: latency, a random failure mix,
//     rules ("the next 3 sends to 15551234567 fail with 131000"), answers that
//     are not Graph API bodies at all (an HTML 502 page, a cut body, a 5 MiB
//     body, a JSON body without a code, a connection dropped or left hanging),
//     per-number throughput (130429: a token bucket, or with strict at most
//     mps accepted sends in any sliding one-second window, no burst), the
//     pair limit (131056), app and WABA limits (4, 80007, with X-App-Usage /
//     X-Business-Use-Case-Usage), locked accounts (131031), the 24-hour
//     customer service window (131047), templates that exist, are paused (132015), disabled (132016), missing
//     (132001) or get the wrong parameter count (132000), and status webhooks
//     (sent, delivered, read, failed), signed with X-Hub-Signature-256, with
//     duplicates, reordering and retries.
//   - It counts sends per job (the X-Waq-Job-Id header, or a hash of the
//     body), so a test can see a job accepted twice: a duplicate send.
//
// The lean mode (Config.Fast, `waq fakegraph --fast`) is for benchmarks
// that run the simulator on the worker's machine: Meta's servers spend none
// of the sender's CPU, so the simulator should spend almost none either. A
// send with a known token and number and a top-level "to" is accepted with
// Meta's answer (contacts, a fresh wamid, message_status "accepted") written
// from a pooled buffer; the body is scanned for "to" only, not decoded. It
// makes no scenario decisions (random failures, limits, windows, templates)
// and sends no webhooks; while there are rules added through the control
// API (`waq bench`'s parking phase answers 131026 so), every send takes the
// full path; latency still applies, the counters of
// Stats (requests, accepted, jobs, duplicates) and OnSend still work, the
// sends log stays empty. A send it cannot accept goes through the full
// checks and gets Meta's error. BenchmarkSimulatorCPU compares the modes.
//
// A scenario is YAML or JSON (see Scenario; testdata/example.yaml uses every
// field):
//
//	latency: {base: 20ms, jitter: 10ms}
//	rules:
//	  - match: {to: "15551234567"}      # also phone_number_id, template, job_id, type, api
//	    times: 3                          # then the rule is spent; 0 or absent: always
//	    respond: {error: 131000}          # or kind: html | cut | huge | nocode | raw | hang | drop | slow
//	random:
//	  - rate: 0.01
//	    respond: {error: 131000}
//	limits: {throughput: {enabled: true, strict: true}, pair: {enabled: true}}
//	window: {enforce: true}
//	webhooks: {url: "http://127.0.0.1:8080/webhook", app_secret: dev-secret}
//	account_events:                     # account webhooks, sent by themselves (AccountEvent)
//	  - after: 30s                        # from the scenario's install; absent: at once
//	    template: {name: promo, language: en_US, status: PAUSED, reason: LOW_QUALITY}
//	  - number: {phone_number_id: "106540352242922", event: FLAGGED}
//
// The simulator's clock (Config.Now) drives token expiry, limits and
// windows, so tests move time forward instead of sleeping; latency, delays
// and webhook timing use real time.
//
// The control API lives under /_fake/ on the same listener (see Control for
// a Go client): GET /_fake/stats, GET /_fake/sends, GET /_fake/jobs/{id},
// POST /_fake/rules, DELETE /_fake/rules, GET and PUT /_fake/scenario,
// POST /_fake/reset, POST /_fake/tokens, POST /_fake/inbound,
// POST /_fake/accounts/{id}/lock and /unlock, POST /_fake/limits/app and
// /_fake/limits/waba/{id}, POST /_fake/numbers/{id}/throughput ({"level":
// "HIGH"}: Meta's automatic upgrade to 1,000 msg/s, shown in the phone
// number GET's throughput {"level": ...} and enforced at once; "mps" sets
// another rate), GET /_fake/webhooks, and the account webhooks on demand:
// POST /_fake/templates/{name}/{language}, /_fake/numbers/{id}/quality and
// /_fake/accounts/{waba}/update (account.go). It has no authentication: the
// simulator is meant for loopback addresses only.
package fakegraph
