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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/worker"
)

// TestLogsTracesKeepSecrets runs jobs with every kind of outcome (sent,
// retried then sent, a transport error, parked as window and template, an
// invalid body, an expired job, a number paused by a token Meta refuses)
// with JSON logs and tracing on, then checks that:
//   - every log line is JSON, and every line about a job carries job_id
//     and the trace_id of that job's trace; a line without job_id names
//     nothing of any job (id, wamid, fbtrace_id, trace id, recipient hash);
//   - no access token appears in the logs, the spans (names, attribute
//     values, events, status), the dead-letter entries and attempt records
//     (their error strings), /readyz or /metrics;
//   - no recipient number appears in clear in the logs or the spans.
func TestLogsTracesKeepSecrets(t *testing.T) {
	e := setup(t)
	tr := e.traced(t)
	const (
		pn2         = "106540352242999"
		tokenB      = "EAAG-refused-token-never-logged"
		numbersFile = `phone_numbers:
  - phone_number_id: "` + pn + `"
    waba_id: "102290129340398"
    token_env: WAQ_TOKEN_A
  - phone_number_id: "` + pn2 + `"
    waba_id: "102290129340399"
    token_env: WAQ_TOKEN_B
`
	)
	_, err := e.fake.AddRules(
		fakegraph.Rule{Match: fakegraph.Match{JobID: "job-flaky"}, Times: 2, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "job-html"}, Times: 1, Respond: fakegraph.Response{Kind: fakegraph.KindHTML}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "job-window"}, Respond: fakegraph.Response{Error: fakegraph.Code(131047)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "job-template"}, Respond: fakegraph.Response{Error: fakegraph.Code(132001)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.AccessToken = ""
	cfg.PhoneNumbersFile = filepath.Join(t.TempDir(), "numbers.yaml")
	if err := os.WriteFile(cfg.PhoneNumbersFile, []byte(numbersFile), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.startWith(t, cfg, map[string]string{"WAQ_TOKEN_A": token, "WAQ_TOKEN_B": tokenB}, worker.Options{TracerProvider: tr.tp})

	recipients := map[string]string{ // job id -> recipient
		"job-sent": "15552220001", "job-flaky": "15552220002", "job-html": "15552220003",
		"job-window": "15552220004", "job-template": "15552220005", "job-expired": "15552220006",
		"job-paused": "15552220007", "job-invalid": "15552220008",
	}
	for _, id := range []string{"job-sent", "job-flaky", "job-html", "job-window"} {
		tr.publish(t, textJob(id, recipients[id]))
	}
	tr.publish(t, templateJob("job-template", recipients["job-template"], "order_update"))
	expired := textJob("job-expired", recipients["job-expired"])
	past := time.Now().Add(-time.Minute)
	expired.NotAfter = &past
	tr.publish(t, expired)
	paused := textJob("job-paused", recipients["job-paused"])
	paused.PhoneNumberID = pn2
	tr.publish(t, paused)
	// An invalid body (a recipient with a plus sign) from a producer that
	// neither validates nor traces.
	msg := nats.NewMsg("waq.send." + pn)
	msg.Data = []byte(`{"id":"job-invalid","phone_number_id":"` + pn + `","message":{"messaging_product":"whatsapp","to":"+` + recipients["job-invalid"] + `","type":"text","text":{"body":"x"}}}`)
	msg.Header.Set("Nats-Msg-Id", "job-invalid")
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}

	e.waitSent(t, 20*time.Second, "job-sent", "job-flaky", "job-html")
	var entries []any
	for _, id := range []string{"job-window", "job-template", "job-expired", "job-invalid"} {
		entries = append(entries, e.waitParked(t, 20*time.Second, id))
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(e.logs.String(), "credential or account problem; pausing") {
			return errors.New("the number with the refused token is not paused yet")
		}
		return nil
	})
	readyz := get(t, r.url+"/readyz")
	metrics := get(t, r.url+"/metrics")
	if err := r.stop(); err != nil { // every span has ended
		t.Fatal(err)
	}

	// What belongs to each job: its trace, wamid, fbtrace ids and the
	// recipient's hash.
	jobTraces := map[string]string{} // job id -> trace id
	var spanTexts []string
	for _, s := range tr.rec.Ended() {
		spanTexts = append(spanTexts, spanText(s))
		if id := attrs(s)["messaging.message.id"].AsString(); id != "" {
			tid := s.SpanContext().TraceID().String()
			if prev, ok := jobTraces[id]; ok && prev != tid {
				t.Errorf("job %s has spans in two traces, %s and %s", id, prev, tid)
			}
			jobTraces[id] = tid
		}
	}
	markers := map[string]string{} // a job's identifying value -> job id
	for id, to := range recipients {
		if jobTraces[id] == "" {
			t.Errorf("job %s has no span", id)
			continue
		}
		markers[id] = id
		markers[jobTraces[id]] = id
		markers[e.recipientHash(t, to)] = id
		h, _ := e.ledger.History(context.Background(), id)
		for _, a := range h {
			if a.FBTraceID != "" {
				markers[a.FBTraceID] = id
			}
		}
		if fj, ok := e.fake.Job(id); ok {
			for _, w := range fj.WAMIDs {
				markers[w] = id
			}
		}
		if hb, err := json.Marshal(h); err == nil {
			entries = append(entries, string(hb))
		}
	}

	logs := e.logs.String()
	traceIDRe := regexp.MustCompile(`^[0-9a-f]{32}$`)
	linesPerJob := map[string]int{}
	for n, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %s", n+1, line)
			continue
		}
		jobID, _ := rec["job_id"].(string)
		traceID, _ := rec["trace_id"].(string)
		if jobID == "" {
			for m, id := range markers {
				if strings.Contains(line, m) {
					t.Errorf("log line %d names job %s (%q) without job_id: %s", n+1, id, m, line)
				}
			}
			continue
		}
		linesPerJob[jobID]++
		if !traceIDRe.MatchString(traceID) || traceID != jobTraces[jobID] {
			t.Errorf("log line %d: job %s with trace_id %q, want its trace %s: %s", n+1, jobID, traceID, jobTraces[jobID], line)
		}
	}
	for id := range recipients {
		if linesPerJob[id] == 0 {
			t.Errorf("no log line about job %s", id)
		}
	}

	entryText, _ := json.Marshal(entries)
	places := map[string]string{
		"the logs": logs, "the spans": strings.Join(spanTexts, "\n"), "the dead-letter entries and attempts": string(entryText),
		"/readyz": readyz, "/metrics": metrics,
	}
	for where, text := range places {
		for _, tok := range []string{token, tokenB} {
			if strings.Contains(text, tok) {
				t.Errorf("an access token appears in %s", where)
			}
		}
		if where == "the dead-letter entries and attempts" {
			continue // the entry keeps the job as published, recipient included
		}
		for id, to := range recipients {
			if strings.Contains(text, to) {
				t.Errorf("the recipient of %s appears in clear in %s", id, where)
			}
		}
	}
	// Not vacuous: the places hold what the checks look through.
	if !strings.Contains(places["the dead-letter entries and attempts"], "131047") || !strings.Contains(readyz, "paused") ||
		!strings.Contains(places["the spans"], "whatsapp.fbtrace_id") {
		t.Error("the run did not produce the entries, pauses and spans the checks need")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}
