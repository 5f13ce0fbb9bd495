package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

const (
	numberA = "106540352240001"
	numberB = "106540352240002"
)

func jobFor(id, number, to string) *queue.Job {
	j := textJob(id, to)
	j.PhoneNumberID = number
	return j
}

// TestTokenExpiryPausesOneNumber: a token that expires mid-run pauses the
// number that uses it and no other, loses nothing, and the worker resumes
// by itself once the token is valid again.
func TestTokenExpiryPausesOneNumber(t *testing.T) {
	e := setup(t)
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{"tok-a", "tok-b"}})
	srv := newServer(t, fake)
	dir := t.TempDir()
	file := filepath.Join(dir, "numbers.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`phone_numbers:
  - {phone_number_id: %q, waba_id: "9001", token_env: TOK_A}
  - {phone_number_id: %q, waba_id: "9002", token_env: TOK_B}
`, numberA, numberB)), 0o600)
	cfg := e.config()
	cfg.GraphURL = srv
	cfg.AccessToken = ""
	cfg.PhoneNumbersFile = file
	cfg.PauseProbe = 200 * time.Millisecond
	r := e.startEnv(t, cfg, map[string]string{"TOK_A": "tok-a", "TOK_B": "tok-b"})

	publish := func(prefix string, n int) (a, b []string) {
		for i := 0; i < n; i++ {
			ia, ib := fmt.Sprintf("%s-a-%d", prefix, i), fmt.Sprintf("%s-b-%d", prefix, i)
			e.publish(t, jobFor(ia, numberA, fmt.Sprintf("1555200%04d", i)), jobFor(ib, numberB, fmt.Sprintf("1555300%04d", i)))
			a, b = append(a, ia), append(b, ib)
		}
		return a, b
	}
	a1, b1 := publish("before", 10)
	e.waitSent(t, 20*time.Second, append(a1, b1...)...)

	past := time.Now().Add(-time.Minute)
	if err := fake.SetToken(fakegraph.TokenUpdate{Token: "tok-a", ExpiresAt: &past}); err != nil {
		t.Fatal(err)
	}
	a2, b2 := publish("during", 20)
	// Number B goes on sending while A is paused.
	e.waitSent(t, 20*time.Second, b2...)
	var ready readiness
	testenv.Eventually(t, 10*time.Second, func() error {
		ready = getReady(t, r.url)
		if len(ready.Paused) == 0 {
			return errors.New("not paused yet")
		}
		return nil
	})
	if !ready.Ready || ready.Paused[0].PhoneNumberID != numberA || ready.Paused[0].Code == nil || *ready.Paused[0].Code != 190 {
		t.Errorf("readyz while A is paused = %+v", ready)
	}
	if m := scrape(t, r.url); !strings.Contains(m, `waq_paused{phone_number_id="`+numberA+`"} 1`) || !strings.Contains(m, `waq_paused{phone_number_id="`+numberB+`"} 0`) {
		t.Errorf("waq_paused metric:\n%s", grep(m, "waq_paused"))
	}
	states, _ := e.ledger.LoadMany(context.Background(), a2)
	sentA := 0
	for _, s := range states {
		if s.Sent() {
			sentA++
		}
	}
	if sentA != 0 {
		t.Errorf("%d jobs of the paused number were sent with an expired token", sentA)
	}
	// Few sends reach Meta with the bad token: the pause stops the rest.
	if st := fake.Stats(false); st.ByCode[190] > 5 {
		t.Errorf("%d sends answered 190; a pause should stop them after the first few", st.ByCode[190])
	}

	// The token is renewed: the probe resumes A, and every job is sent.
	if err := fake.SetToken(fakegraph.TokenUpdate{Token: "tok-a"}); err != nil {
		t.Fatal(err)
	}
	e.waitSent(t, 30*time.Second, a2...)
	e.streamEmpty(t, 10*time.Second)
	testenv.Eventually(t, 5*time.Second, func() error {
		if ready := getReady(t, r.url); len(ready.Paused) != 0 {
			return fmt.Errorf("still paused: %+v", ready.Paused)
		}
		return nil
	})
	page, err := e.dlq.List(context.Background(), deadletter.Filter{}, "", 10)
	if err != nil || len(page.Entries) != 0 {
		t.Errorf("parked during a pause: %d entries, %v", len(page.Entries), err)
	}
	if st := fake.Stats(false); st.Duplicates != 0 {
		t.Errorf("%d duplicate sends", st.Duplicates)
	}
}

type readiness struct {
	Ready  bool `json:"ready"`
	Paused []struct {
		PhoneNumberID string `json:"phone_number_id"`
		Code          *int   `json:"code"`
		Reason        string `json:"reason"`
	} `json:"paused"`
	Throttled []map[string]any `json:"throttled"`
}

func getReady(t *testing.T, url string) readiness {
	t.Helper()
	return getReadyAs[readiness](t, url)
}

// getReadyAs reads /readyz into T, the part of it a test looks at.
func getReadyAs[T any](t *testing.T, url string) T {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r T
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestThroughputLevelShown: a number Meta has upgraded (throughput level
// HIGH) is paced at 1,000 msg/s from the start: /readyz lists it with its
// rate and where the rate comes from, and waq_number_rate shows it; a
// number whose file gives mps keeps it.
func TestThroughputLevelShown(t *testing.T) {
	e := setup(t)
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{"tok-a"}})
	if err := fake.SetThroughput(numberA, fakegraph.ThroughputUpdate{Level: "HIGH"}); err != nil {
		t.Fatal(err)
	}
	if err := fake.SetThroughput(numberB, fakegraph.ThroughputUpdate{Level: "HIGH"}); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, fake)
	file := filepath.Join(t.TempDir(), "numbers.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`phone_numbers:
  - {phone_number_id: %q, waba_id: "9001", token_env: TOK_A}
  - {phone_number_id: %q, waba_id: "9001", token_env: TOK_A, mps: 50}
`, numberA, numberB)), 0o600)
	cfg := e.config()
	cfg.GraphURL = srv
	cfg.AccessToken = ""
	cfg.PhoneNumbersFile = file
	r := e.startEnv(t, cfg, map[string]string{"TOK_A": "tok-a"})

	type pace struct {
		PhoneNumberID string  `json:"phone_number_id"`
		MPS           int     `json:"mps"`
		Source        string  `json:"source"`
		Level         string  `json:"level"`
		Rate          float64 `json:"rate"`
	}
	var got map[string]pace
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(r.url + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Numbers []pace `json:"numbers"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		got = map[string]pace{}
		for _, p := range body.Numbers {
			got[p.PhoneNumberID] = p
		}
		if got[numberA].Level == "" || got[numberB].Level == "" {
			return fmt.Errorf("levels not read yet: %+v", body.Numbers)
		}
		return nil
	})
	if p := got[numberA]; p.MPS != 1000 || p.Source != "level" || p.Level != "HIGH" || p.Rate != 1000 {
		t.Errorf("upgraded number on /readyz: %+v", p)
	}
	if p := got[numberB]; p.MPS != 50 || p.Source != "file" || p.Level != "HIGH" {
		t.Errorf("number with the file's mps on /readyz: %+v", p)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		m := scrape(t, r.url)
		if !strings.Contains(m, `waq_number_rate{phone_number_id="`+numberA+`"} 1000`) || !strings.Contains(m, `waq_number_rate{phone_number_id="`+numberB+`"} 50`) {
			return fmt.Errorf("waq_number_rate:\n%s", grep(m, "waq_number_rate"))
		}
		return nil
	})
}
