package worker_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/queue"
)

// TestPolicyDefaultAPI: the policy file's defaults.api sends a template job
// that names no api, on a number whose file entry names none, to
// /marketing_messages; the job's own api and the number's api win over it;
// a message that is not a template goes to /messages whatever it says.
// The simulator records the endpoint of every send.
func TestPolicyDefaultAPI(t *testing.T) {
	e := setup(t)
	policy := strings.Replace(fastPolicy, "defaults:\n", "defaults:\n  api: marketing_messages\n", 1)
	if policy == fastPolicy {
		t.Fatal("fastPolicy has no defaults: section to add api to")
	}
	if err := os.WriteFile(e.policy, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		plain = pn                // in the phone-number file without api
		cloud = "106540352242923" // api: messages
		mm    = "106540352242924" // api: marketing_messages
	)
	cfg := e.config()
	cfg.PhoneNumbersFile = filepath.Join(t.TempDir(), "numbers.yaml")
	file := "phone_numbers:\n" +
		"  - phone_number_id: \"" + plain + "\"\n    waba_id: \"102290129340398\"\n" +
		"  - phone_number_id: \"" + cloud + "\"\n    waba_id: \"102290129340398\"\n    api: messages\n" +
		"  - phone_number_id: \"" + mm + "\"\n    waba_id: \"102290129340398\"\n    api: marketing_messages\n"
	if err := os.WriteFile(cfg.PhoneNumbersFile, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(t, cfg)

	msg := func(rest string) json.RawMessage {
		return json.RawMessage(`{"messaging_product":"whatsapp","to":"15551234567",` + rest + `}`)
	}
	tpl := `"type":"template","template":{"name":"promo","language":{"code":"en_US"}}`
	text := `"type":"text","text":{"body":"hello"}`
	jobs := []struct {
		job queue.Job
		api string // the endpoint the simulator must see
	}{
		// The policy's default: no job api, no number api.
		{queue.Job{ID: "policy-tpl", PhoneNumberID: plain, Message: msg(tpl)}, "marketing_messages"},
		// Templates only: a text message stays on /messages.
		{queue.Job{ID: "policy-text", PhoneNumberID: plain, Message: msg(text)}, "messages"},
		// The job's own api wins over the policy's.
		{queue.Job{ID: "job-own", PhoneNumberID: plain, API: queue.APIMessages, Message: msg(tpl)}, "messages"},
		// The number's explicit messages wins over the policy's.
		{queue.Job{ID: "number-cloud", PhoneNumberID: cloud, Message: msg(tpl)}, "messages"},
		{queue.Job{ID: "number-mm", PhoneNumberID: mm, Message: msg(tpl)}, "marketing_messages"},
		// The job's own api wins over the number's too.
		{queue.Job{ID: "job-over-number", PhoneNumberID: cloud, API: queue.APIMarketingMessages, Message: msg(tpl)}, "marketing_messages"},
		{queue.Job{ID: "number-mm-text", PhoneNumberID: mm, Message: msg(text)}, "messages"},
	}
	var ids []string
	for i := range jobs {
		if _, err := e.producer.Publish(context.Background(), &jobs[i].job); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, jobs[i].job.ID)
	}
	e.waitSent(t, 20*time.Second, ids...)
	seen := map[string][]string{}
	for _, s := range e.fake.Sends(0) {
		if s.Outcome != "accepted" {
			t.Errorf("%s: %s on /%s", s.JobID, s.Outcome, s.API)
		}
		seen[s.JobID] = append(seen[s.JobID], s.API)
	}
	for _, j := range jobs {
		if got := seen[j.job.ID]; len(got) != 1 || got[0] != j.api {
			t.Errorf("%s: sent to %v, want once to /%s", j.job.ID, got, j.api)
		}
	}
}
