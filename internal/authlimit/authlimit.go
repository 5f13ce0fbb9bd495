// Package authlimit limits failed sign-ins and wrong bearer tokens per
// client address, so that guessing the admin token from one address runs at
// a few tries a minute rather than as fast as the network allows.
//
// Only failures spend the budget: an operator with the right token is never
// slowed down, unless the same address has failed too often, when every
// attempt from it (right token or not) is refused until the budget refills.
// Refusing the right token too is what makes the limit hold: otherwise the
// answer to each guess would still tell a right one from a wrong one.
//
// The limit is per process: n workers behind one load balancer allow n
// times the budget, still a few a minute.
package authlimit

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options of a Limiter. The zero value means the defaults.
type Options struct {
	// Burst is how many failures an address may have at once. Defaults to 5.
	Burst int
	// Every is the time it takes to earn one failure back: the sustained
	// rate of guesses. Defaults to 12s (five a minute).
	Every time.Duration
	// MaxAddrs bounds the addresses remembered; past it the one that failed
	// longest ago is forgotten first. Defaults to 10,000.
	MaxAddrs int
	// Count, when set, is told of each failure ("wrong_token") and each
	// refusal ("limited"), with the surface named by the caller.
	Count func(surface, result string)
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Limiter keeps a failure budget per client address. Safe for concurrent use.
type Limiter struct {
	opts Options

	mu    sync.Mutex
	addrs map[string]*budget
}

type budget struct {
	lim  *rate.Limiter
	last time.Time // the last failure
}

// New returns a limiter with opts.
func New(opts Options) *Limiter {
	if opts.Burst <= 0 {
		opts.Burst = 5
	}
	if opts.Every <= 0 {
		opts.Every = 12 * time.Second
	}
	if opts.MaxAddrs <= 0 {
		opts.MaxAddrs = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{opts: opts, addrs: map[string]*budget{}}
}

// Limited reports whether r's client has spent its budget; when it has, it
// counts a refusal and returns how long until it may try again (at least a
// second). Call it before checking the token.
func (l *Limiter) Limited(r *http.Request, surface string) (time.Duration, bool) {
	key := Client(r)
	now := l.opts.Now()
	l.mu.Lock()
	b, ok := l.addrs[key]
	var tokens float64
	if ok {
		tokens = b.lim.TokensAt(now)
	}
	l.mu.Unlock()
	if !ok || tokens >= 1 {
		return 0, false
	}
	l.count(surface, "limited")
	wait := time.Duration((1 - tokens) * float64(l.opts.Every))
	return max(wait, time.Second), true
}

// Failed spends one of r's client's budget for a failed attempt.
func (l *Limiter) Failed(r *http.Request, surface string) {
	key := Client(r)
	now := l.opts.Now()
	l.mu.Lock()
	b, ok := l.addrs[key]
	if !ok {
		l.makeRoom(now)
		b = &budget{lim: rate.NewLimiter(rate.Every(l.opts.Every), l.opts.Burst)}
		l.addrs[key] = b
	}
	b.last = now
	b.lim.AllowN(now, 1)
	l.mu.Unlock()
	l.count(surface, "wrong_token")
}

// makeRoom forgets addresses when the map is full: first those whose
// budget has refilled (they are as good as new), then, if none has, the
// one that failed longest ago. Called with l.mu held.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.addrs) < l.opts.MaxAddrs {
		return
	}
	full := float64(l.opts.Burst)
	for k, b := range l.addrs {
		if b.lim.TokensAt(now) >= full {
			delete(l.addrs, k)
		}
	}
	if len(l.addrs) < l.opts.MaxAddrs {
		return
	}
	var oldest string
	var at time.Time
	for k, b := range l.addrs {
		if oldest == "" || b.last.Before(at) {
			oldest, at = k, b.last
		}
	}
	delete(l.addrs, oldest)
}

// Len is the number of addresses remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

func (l *Limiter) count(surface, result string) {
	if l.opts.Count != nil {
		l.opts.Count(surface, result)
	}
}

// RetryAfter is the value of a Retry-After header for wait: whole seconds,
// rounded up.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(int(math.Ceil(wait.Seconds())))
}

// Client is the address a request's budget is kept under: the connection's
// IP (forwarding headers can be forged, and the operator's listener is not
// meant to sit behind a public proxy), an IPv6 address as its /64, since
// one client commonly holds a whole /64.
func Client(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
