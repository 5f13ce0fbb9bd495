package worker_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/queue"
)

const bsuid = "US.13491208655302741918"

// TestEndpointsAndRecipients: a job addressed by a business-scoped user ID
// goes to Meta with recipient (not to); a job with api marketing_messages
// goes to /marketing_messages with its product_policy; a number whose file
// entry says api: marketing_messages sends its template jobs there, its
// other messages to /messages; a job's own api wins over the number's.
func TestEndpointsAndRecipients(t *testing.T) {
	e := setup(t)
	cfg := e.config()
	cfg.PhoneNumbersFile = filepath.Join(t.TempDir(), "numbers.yaml")
	file := "phone_numbers:\n  - phone_number_id: \"" + pn + "\"\n    waba_id: \"102290129340398\"\n    api: marketing_messages\n" +
		"  - phone_number_id: \"106540352242923\"\n    waba_id: \"102290129340398\"\n"
	if err := os.WriteFile(cfg.PhoneNumbersFile, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	// Meta refuses some messages to a BSUID (an authentication template):
	// the job is parked invalid, its entry keeps the BSUID as recipient.
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "otp-bsuid"}, Respond: fakegraph.Response{Error: fakegraph.Code(131062)}}); err != nil {
		t.Fatal(err)
	}
	e.start(t, cfg)

	msg := func(addr, rest string) json.RawMessage {
		return json.RawMessage(`{"messaging_product":"whatsapp",` + addr + `,` + rest + `}`)
	}
	tpl := `"type":"template","template":{"name":"promo","language":{"code":"en_US"}}`
	text := `"type":"text","text":{"body":"hello"}`
	jobs := []struct {
		job     queue.Job
		api, to string
	}{
		{queue.Job{ID: "bsuid-text", PhoneNumberID: "106540352242923", Message: msg(`"recipient":"`+bsuid+`"`, text)}, "messages", bsuid},
		{queue.Job{ID: "bsuid-parent", PhoneNumberID: "106540352242923", Message: msg(`"recipient":"US.ENT.11815799212886844830"`, text)}, "messages", "US.ENT.11815799212886844830"},
		{queue.Job{ID: "mm-job", PhoneNumberID: "106540352242923", API: queue.APIMarketingMessages, Message: msg(`"to":"15551234567"`, tpl+`,"product_policy":"STRICT"`)}, "marketing_messages", "15551234567"},
		{queue.Job{ID: "mm-number", PhoneNumberID: pn, Message: msg(`"recipient":"`+bsuid+`"`, tpl)}, "marketing_messages", bsuid},
		{queue.Job{ID: "text-number", PhoneNumberID: pn, Message: msg(`"to":"15551234567"`, text)}, "messages", "15551234567"},
		{queue.Job{ID: "cloud-own", PhoneNumberID: pn, API: queue.APIMessages, Message: msg(`"to":"15551234567"`, tpl)}, "messages", "15551234567"},
	}
	var ids []string
	for i := range jobs {
		if _, err := e.producer.Publish(context.Background(), &jobs[i].job); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, jobs[i].job.ID)
	}
	otp := queue.Job{ID: "otp-bsuid", PhoneNumberID: "106540352242923", Message: msg(`"recipient":"`+bsuid+`"`, tpl)}
	if _, err := e.producer.Publish(context.Background(), &otp); err != nil {
		t.Fatal(err)
	}
	e.waitSent(t, 20*time.Second, ids...)
	parked := e.waitParked(t, 20*time.Second, "otp-bsuid")
	if parked.Reason != "invalid" || parked.Recipient != bsuid || parked.To != "" || parked.LastError == nil || *parked.LastError.Code != 131062 {
		t.Errorf("131062 entry: reason %s, recipient %q, to %q, last error %+v", parked.Reason, parked.Recipient, parked.To, parked.LastError)
	}
	byJob := map[string]int{}
	sends := e.fake.Sends(0)
	for i, s := range sends {
		byJob[s.JobID] = i
	}
	for _, j := range jobs {
		i, ok := byJob[j.job.ID]
		if !ok {
			t.Errorf("%s: the simulator saw no send", j.job.ID)
			continue
		}
		s := sends[i]
		if s.API != j.api || s.To != j.to || s.Outcome != "accepted" {
			t.Errorf("%s: sent to /%s for %q (%s); want /%s for %q", j.job.ID, s.API, s.To, s.Outcome, j.api, j.to)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, bsuid) || strings.Contains(logs, "11815799212886844830") {
		t.Error("a business-scoped user ID appears in the logs")
	}
}
