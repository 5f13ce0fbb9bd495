package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waqhq/waq/internal/testenv"
)

// TestSendRecipient: --recipient addresses the job by a business-scoped
// user ID, in place of --to.
func TestSendRecipient(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	vars := map[string]string{"WAQ_NATS_URL": n.URL}
	for _, bsuid := range []string{"US.13491208655302741918", "US.ENT.11815799212886844830"} {
		code, _, stderr := runCmd(t, vars, "", "send", "--phone-number-id", "106540352242922", "--recipient", bsuid,
			"--template", "order_update", "--language", "en_US", "--param", "42")
		if code != 0 {
			t.Fatalf("%s: code %d: %s", bsuid, code, stderr)
		}
		var m map[string]any
		job := lastJob(t, js)
		if err := json.Unmarshal(job.Message, &m); err != nil || m["recipient"] != bsuid || m["to"] != nil || m["type"] != "template" {
			t.Errorf("%s: message = %s", bsuid, job.Message)
		}
	}
	// A file's message without an addressee takes --recipient; text too.
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare.json")
	if err := os.WriteFile(bare, []byte(`{"messaging_product":"whatsapp","type":"text","text":{"body":"hi"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--file", bare}, {"--text", "hi"}} {
		a := append([]string{"send", "--phone-number-id", "106540352242922", "--recipient", "US.13491208655302741918"}, args...)
		if code, _, stderr := runCmd(t, vars, "", a...); code != 0 {
			t.Fatalf("%v: code %d: %s", args, code, stderr)
		}
		var m map[string]any
		if job := lastJob(t, js); json.Unmarshal(job.Message, &m) != nil || m["recipient"] != "US.13491208655302741918" || m["to"] != nil {
			t.Errorf("%v: message = %s", args, job.Message)
		}
	}

	// Bad values and conflicts: usage errors (exit 2), nothing published.
	withTo := filepath.Join(dir, "to.json")
	withRecipient := filepath.Join(dir, "recipient.json")
	if err := os.WriteFile(withTo, []byte(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(withRecipient, []byte(`{"messaging_product":"whatsapp","recipient":"US.13491208655302741918","type":"text","text":{"body":"hi"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"send", "--phone-number-id", "106540352242922"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--recipient", "US.13491208655302741918", "--to", "15551234567", "--text", "hi"}, "give one of --to"},
		{[]string{"--recipient", "15551234567", "--text", "hi"}, "looks like a phone number"},
		{[]string{"--recipient", "us.1349", "--text", "hi"}, "not a business-scoped user ID"},
		{[]string{"--recipient", "US.", "--text", "hi"}, "not a business-scoped user ID"},
		{[]string{"--recipient", "US.13491208655302741918", "--file", withTo}, "the file's message has to"},
		{[]string{"--recipient", "US.99", "--file", withRecipient}, "the file's message has recipient"},
		{[]string{"--to", "15551234567", "--file", withRecipient}, "the file's message has recipient"},
		{[]string{"--text", "hi"}, "--to or --recipient is required"},
	} {
		code, stdout, stderr := runCmd(t, vars, "", append(base, c.args...)...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: code %d stdout %q stderr %q, want exit 2 with %q", c.args, code, stdout, stderr, c.want)
		}
	}
	// The same recipient as the file's is no conflict.
	if code, _, stderr := runCmd(t, vars, "", append(base, "--recipient", "US.13491208655302741918", "--file", withRecipient)...); code != 0 {
		t.Errorf("same recipient as the file: code %d: %s", code, stderr)
	}
}
