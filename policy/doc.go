// Package policy decides what becomes of a failed send: retry it after a
// backoff, throttle (slow a recipient, a phone number, the WABA or the app
// down, then send again), park it in the dead-letter store with a reason,
// or pause every send that would hit the same credential or account
// problem (SPEC §3).
//
// A failure (graph.Failure) is matched by its Graph API error code; an
// answer without a code by its HTTP status, and a send without a usable
// answer (timeout, refused connection, HTML page, cut or oversized body) by
// the transport rule. Among the rules that match, the last one wins. A code
// no rule names is retried with the defaults and parked as "unknown" once
// they are spent. The built-in table is SPEC Appendix A (see Default).
//
// Attempts are bounded twice. max_attempts (default 8) counts the sends of
// a job that were not throttled or paused, the first included: a rate
// limit says nothing about the message, so it must not use up its retries.
// max_sends (default 50) bounds every send of a job, so that a job that is
// throttled forever still ends. See Policy.DecideAttempts.
//
// # The policy file
//
// An operator's file (WAQ_POLICY_FILE, YAML, read by Load) is laid over
// the default table, code by code: a code the file does not name keeps its
// default row.
//
//	defaults:
//	  max_attempts: 8        # sends a retry rule allows, the first included
//	  max_sends: 50          # every send of a job, throttled and paused ones included
//	  backoff: {initial: 30s, multiplier: 2, max: 15m, jitter: 0.2}
//	rules:
//	  - codes: [131000, 1, 2, 131016, 133004]
//	    action: retry
//	  - codes: [131047]
//	    action: park
//	    reason: window
//	  - codes: ["200-299", 190]  # a range is a quoted "lo-hi"
//	    action: pause
//	    scope: token
//	  - http_status: [502, "520-529"]
//	    action: retry
//	  - transport: true
//	    action: retry
//	    max_attempts: 3
//	    backoff: {initial: 1s}  # keys left out come from defaults.backoff
//
// A rule has at least one of codes, http_status (100 to 599) and
// transport: true, and an action: retry, throttle, park or pause.
//   - reason: one of the stable reasons (ValidReason). Required for park;
//     on retry, throttle and pause it is the reason the job is parked with
//     once its attempts are spent (default retries_exhausted, and account
//     for pause).
//   - scope: throttle takes number, recipient, waba or app; pause takes
//     number, waba, app or token; both default to number. No other action
//     takes a scope.
//   - max_attempts: on retry it replaces defaults.max_attempts (and may not
//     exceed max_sends); on throttle and pause it replaces max_sends. Not on
//     park.
//   - backoff: initial and max are Go durations ("30s", "15m", at most
//     24h, initial <= max), multiplier is 1 to 100, jitter 0 to 1. Keys
//     left out come from defaults.backoff. Not on park.
//
// Anchors and aliases work; merge keys (<<) do not. Unknown keys, duplicate
// keys, an empty file, a file that is not a mapping and a second YAML
// document are errors. Every problem is one *FileError whose Error is one
// line naming the file, the line and the field:
//
//	policy.yaml:12: rules[2].action: "retyr" is not one of retry, throttle, park, pause
package policy
