package authlimit

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func from(addr string) *http.Request { return &http.Request{RemoteAddr: addr} }

// TestBudget: five failures, then every attempt is refused with the wait
// until the next one is earned; another address is not affected; the
// budget refills at one per Every.
func TestBudget(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	counts := map[string]int{}
	l := New(Options{Now: c.Now, Count: func(surface, result string) { counts[surface+" "+result]++ }})
	a := from("192.0.2.7:50123")
	tried := 0
	for range 300 {
		if wait, limited := l.Limited(a, "api"); limited {
			if wait < time.Second || wait > 12*time.Second {
				t.Fatalf("wait %v, want 1s to 12s", wait)
			}
			continue
		}
		tried++
		l.Failed(a, "api")
	}
	if tried != 5 {
		t.Errorf("%d of 300 attempts got through, want 5", tried)
	}
	if counts["api wrong_token"] != 5 || counts["api limited"] != 295 {
		t.Errorf("counts %v", counts)
	}
	// Another port of the same address is the same client; another address is not.
	if _, limited := l.Limited(from("192.0.2.7:1"), "api"); !limited {
		t.Error("another port of a limited address is not limited")
	}
	if _, limited := l.Limited(from("192.0.2.8:50123"), "api"); limited {
		t.Error("another address is limited")
	}
	wait, _ := l.Limited(a, "api")
	if RetryAfter(wait) != "12" {
		t.Errorf("Retry-After %s, want 12", RetryAfter(wait))
	}
	c.Add(6 * time.Second)
	if wait, limited := l.Limited(a, "api"); !limited || RetryAfter(wait) != "6" {
		t.Errorf("after 6s: limited %v, Retry-After %s, want 6", limited, RetryAfter(wait))
	}
	c.Add(6 * time.Second)
	if _, limited := l.Limited(a, "api"); limited {
		t.Error("not let through after the wait")
	}
	l.Failed(a, "api")
	if _, limited := l.Limited(a, "api"); !limited {
		t.Error("a second failure after one was earned back is let through")
	}
	c.Add(time.Minute)
	for i := range 5 {
		if _, limited := l.Limited(a, "api"); limited {
			t.Fatalf("after a minute, attempt %d is limited", i+1)
		}
		l.Failed(a, "api")
	}
}

// TestIPv6Prefix: the addresses of one /64 share a budget.
func TestIPv6Prefix(t *testing.T) {
	l := New(Options{Burst: 2})
	l.Failed(from("[2001:db8:1:2::1]:443"), "console")
	l.Failed(from("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443"), "console")
	if _, limited := l.Limited(from("[2001:db8:1:2::99]:1"), "console"); !limited {
		t.Error("another address of the /64 is not limited")
	}
	if _, limited := l.Limited(from("[2001:db8:1:3::1]:1"), "console"); limited {
		t.Error("the next /64 is limited")
	}
	for in, want := range map[string]string{
		"[2001:db8:1:2::1]:443": "2001:db8:1:2::/64", "192.0.2.1:9": "192.0.2.1", "[::ffff:192.0.2.1]:9": "192.0.2.1",
		"not an address": "not an address", "": "",
	} {
		if got := Client(from(in)); got != want {
			t.Errorf("Client(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBoundedMemory: addresses past MaxAddrs are forgotten, refilled
// ones first, then the one that failed longest ago; the latest stay.
func TestBoundedMemory(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l := New(Options{Now: c.Now, MaxAddrs: 100, Burst: 1})
	for i := range 10000 {
		l.Failed(from(fmt.Sprintf("10.%d.%d.%d:1", i>>16, (i>>8)&255, i&255)), "api")
		c.Add(time.Millisecond)
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("%d addresses remembered, bound 100", n)
	}
	if _, limited := l.Limited(from("10.0.39.15:1"), "api"); !limited { // the last one, 9999
		t.Error("the latest address was forgotten")
	}
	if _, limited := l.Limited(from("10.0.0.0:1"), "api"); limited {
		t.Error("the first address is still remembered")
	}
	// Once their budgets refill, they all go at the next new address.
	c.Add(time.Hour)
	l.Failed(from("192.0.2.1:1"), "api")
	if n := l.Len(); n != 1 {
		t.Errorf("%d addresses after an hour and one new failure, want 1", n)
	}
}
