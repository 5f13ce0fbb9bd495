package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

func TestSend(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	vars := map[string]string{"WAQ_NATS_URL": n.URL}
	code, stdout, stderr := runCmd(t, vars, "", "send", "--phone-number-id", "106540352242922", "--to", "15551234567",
		"--template", "order_update", "--language", "en_US", "--param", "42", "--metadata", "tenant=acme")
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
		t.Fatalf("printed %q, want a UUIDv7", stdout)
	}
	job := lastJob(t, js)
	if job.ID != id || job.Metadata["tenant"] != "acme" {
		t.Errorf("job = %+v", job)
	}
	var m struct {
		To       string `json:"to"`
		Template struct {
			Name       string `json:"name"`
			Components []struct {
				Parameters []struct{ Text string } `json:"parameters"`
			} `json:"components"`
		} `json:"template"`
	}
	if err := json.Unmarshal(job.Message, &m); err != nil || m.To != "15551234567" || m.Template.Name != "order_update" || m.Template.Components[0].Parameters[0].Text != "42" {
		t.Errorf("message = %s", job.Message)
	}

	// A whole job from a file, with its own id.
	file := filepath.Join(t.TempDir(), "job.json")
	os.WriteFile(file, []byte(`{"id":"from-file","phone_number_id":"106540352242922","message":{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}}`), 0o600)
	code, stdout, stderr = runCmd(t, vars, "", "send", "--file", file)
	if code != 0 || strings.TrimSpace(stdout) != "from-file" {
		t.Fatalf("file: code %d %q %q", code, stdout, stderr)
	}
	// A message object on stdin, with the number and recipient from flags.
	code, stdout, stderr = runCmd(t, vars, `{"messaging_product":"whatsapp","type":"text","text":{"body":"hi"}}`,
		"send", "--file", "-", "--phone-number-id", "106540352242922", "--to", "15557654321", "--id", "stdin-1")
	if code != 0 || strings.TrimSpace(stdout) != "stdin-1" {
		t.Fatalf("stdin: code %d %q %q", code, stdout, stderr)
	}
}

func lastJob(t *testing.T, js jetstream.JetStream) queue.Job {
	t.Helper()
	s, err := js.Stream(context.Background(), "WAQ_SEND")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(context.Background(), "waq.send.106540352242922")
	if err != nil {
		t.Fatal(err)
	}
	var j queue.Job
	if err := json.Unmarshal(raw.Data, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestSendBadInput: every refusal is exit status 2 with one line, and
// nothing is published (no NATS server is even running).
func TestSendBadInput(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(notJSON, []byte("<html>"), 0o600)
	badMsg := filepath.Join(dir, "badmsg.json")
	os.WriteFile(badMsg, []byte(`{"messaging_product":"whatsapp","to":"15551234567","type":"fax"}`), 0o600)
	vars := map[string]string{"WAQ_NATS_URL": "nats://127.0.0.1:1"}
	base := []string{"send", "--phone-number-id", "106540352242922"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"send", "--to", "15551234567", "--text", "x"}, "--phone-number-id is required"},
		{append(base, "--to", "+1 (555) 123-4567", "--text", "x"), `write it as "15551234567"`},
		{append(base, "--text", "x"), "--to or --recipient is required"},
		{append(base, "--to", "15551234567"), "exactly one of --template, --text or --file"},
		{append(base, "--to", "15551234567", "--text", "x", "--template", "t"), "exactly one of"},
		{append(base, "--to", "15551234567", "--template", "t"), "needs --language"},
		{append(base, "--to", "15551234567", "--text", "x", "--param", "1"), "go with --template"},
		{append(base, "--file", notJSON), "not valid JSON at byte 1"},
		{append(base, "--file", badMsg), `unknown type "fax"`},
		{append(base, "--file", filepath.Join(dir, "missing.json")), "no such file"},
		{append(base, "--to", "15551234567", "--text", "x", "--not-after", "soon"), "--not-after"},
		{append(base, "--to", "15551234567", "--text", "x", "--metadata", "novalue"), "want key=value"},
		{append(base, "--to", "15551234567", "--text", "x", "--id", "has space"), "space"},
		{append(base, "--bogus"), "flag provided but not defined"},
		{append(base, "--to", "15551234567", "--text", "x", "extra"), `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCmd(t, vars, "", tt.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: code %d stdout %q stderr %q; want 2 and %q", tt.args, code, stdout, stderr, tt.want)
		}
		if tt.want != "flag provided but not defined" && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: more than one line: %q", tt.args, stderr)
		}
	}
}
