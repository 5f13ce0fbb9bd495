// Package console is waq's ops console: server-rendered pages under
// /admin/ui/ on the worker's listener, for the operator who cleans up after
// an incident and would rather look than type.
//
//	GET  /admin/ui/               overview: the fleet's sends, throttles, parks, 131000s, pending; pauses
//	GET  /admin/ui/login          sign-in page
//	POST /admin/ui/login          sign in with the admin token
//	POST /admin/ui/logout         sign out
//	GET  /admin/ui/dlq            dead letters: filters, cursor pages, the isolation verdict
//	GET  /admin/ui/dlq/{id}       one entry: the job, the last error, the attempts, the trace
//	GET  /admin/ui/replay         replay: the dry-run preview and the form
//	POST /admin/ui/replay         replay: do it, show the result
//	GET  /admin/ui/purge          purge: the dry-run preview and the form
//	POST /admin/ui/purge          purge: do it, show the result
//	GET  /admin/ui/export         support ticket: the preview
//	GET  /admin/ui/export/ticket  support ticket: the file (?format=text or json)
//	GET  /admin/ui/static/...     stylesheet, script, icon (embedded)
//
// Every dead-letter operation calls the deadletter package, as `waq dlq`
// and the admin API do: one implementation, three front ends. The console
// is on only when the admin token is set; signing in takes that token.
//
// # Sessions and CSRF
//
// A session is a cookie signed with HMAC-SHA256 under a key derived from
// the admin token; it carries its expiry and a random nonce, and nothing is
// stored server-side to accept it. That choice lets the console sit behind
// a load balancer in front of several workers and survive a rolling
// restart without signing everybody out, and rotating WAQ_ADMIN_TOKEN ends
// every session at once. Signing out clears the cookie and stores the
// nonce in Redis (Options.Redis, the worker's) until the session would have
// expired; every worker looks it up on each request, so a sign-out on one
// ends the session on all of them. While Redis does not answer, a session
// cannot be checked and is refused (503), not let through. The cookie
// is HttpOnly, SameSite=Strict, Secure when the request came over TLS, and
// scoped to /admin/ui/.
//
// Every POST that changes something carries a CSRF token: an HMAC of the
// session's nonce under the same key, so it is per session, and it is
// compared in constant time. SameSite=Strict already keeps the cookie off
// cross-site requests; the token is the second lock.
//
// # Privacy
//
// A recipient's number is shown masked except its last digits
// (•••••••4567) everywhere on the pages, including inside the job as
// published and the error texts of an entry. The support ticket the export
// page downloads is the file `waq dlq export` writes, with the numbers in
// full, because that is what Meta support asks for; the page says so.
package console
