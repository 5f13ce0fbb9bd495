package admin_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waqhq/waq/admin"
	"github.com/waqhq/waq/internal/authlimit"
	"github.com/waqhq/waq/internal/testenv"
)

// TestAuthLimit: 300 wrong bearer tokens from one address get five 401s,
// then 429 with Retry-After, counted; from then on the right token is
// refused too (else each answer would still tell a right guess from a
// wrong one) until the wait has passed. Nothing is shown or done.
func TestAuthLimit(t *testing.T) {
	t.Parallel()
	clock := testenv.NewClock(time.Now())
	var mu sync.Mutex
	counts := map[string]int{}
	lim := authlimit.New(authlimit.Options{Now: clock.Now, Count: func(surface, result string) {
		mu.Lock()
		counts[surface+" "+result]++
		mu.Unlock()
	}})
	f := setup(t, token, func(o *admin.Options) { o.Limiter = lim })
	codes := map[int]int{}
	for i := range 300 {
		res, body := f.do(t, "GET", "/admin/dlq/stats", "wrong-token-"+strconv.Itoa(i), "")
		codes[res.StatusCode]++
		if res.StatusCode == http.StatusTooManyRequests {
			ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 12 {
				t.Fatalf("429 with Retry-After %q, want 1 to 12 seconds", res.Header.Get("Retry-After"))
			}
			if !strings.Contains(body, "too many wrong tokens") || strings.Contains(body, "window") {
				t.Fatalf("429 body %s", body)
			}
		}
	}
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 295 {
		t.Errorf("answers to 300 wrong tokens: %v, want 5 × 401 then 295 × 429", codes)
	}
	mu.Lock()
	if counts["admin_api wrong_token"] != 5 || counts["admin_api limited"] != 295 {
		t.Errorf("counted %v", counts)
	}
	mu.Unlock()
	res, body := f.do(t, "GET", "/admin/dlq/stats", token, "")
	if res.StatusCode != http.StatusTooManyRequests || strings.Contains(body, "window") {
		t.Errorf("the right token while limited: %d %s", res.StatusCode, body)
	}
	if f.parked(t) != 3 {
		t.Errorf("%d parked, want 3", f.parked(t))
	}
	clock.Add(12 * time.Second)
	if res, body := f.do(t, "GET", "/admin/dlq/stats", token, ""); res.StatusCode != http.StatusOK || !strings.Contains(body, "window") {
		t.Errorf("the right token after Retry-After: %d %s", res.StatusCode, body)
	}
	// The right token spends nothing: many of them in a row all pass.
	for range 20 {
		if res, _ := f.do(t, "GET", "/admin/dlq/stats", token, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("the right token, again: %d", res.StatusCode)
		}
	}
}
