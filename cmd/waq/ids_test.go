package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/waqhq/waq/deadletter"
)

// TestDLQIDs: a table in a narrow terminal cuts other columns, never the
// job id; the listed id, or a unique start of it, works in show, replay
// and purge; an ambiguous start fails (exit status 1) naming the
// candidates.
func TestDLQIDs(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	ids := []string{"018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90", "018f6b1e-9999-7c4e-9d2a-3b5c6d7e8f91", "02aa0000-0000-7000-8000-000000000000"}
	for i, id := range ids {
		code := 131047
		e := &deadletter.Entry{ID: id, Reason: "window",
			Job:           json.RawMessage(fmt.Sprintf(`{"id":%q,"phone_number_id":"106540352242922","message":{"messaging_product":"whatsapp","to":"1555000010%d","type":"text","text":{"body":"hi"}}}`, id, i)),
			PhoneNumberID: "106540352242922", To: fmt.Sprintf("1555000010%d", i), MessageType: "text", ParkedAt: time.Now().UTC().Add(-time.Duration(i) * time.Second),
			LastError: &deadletter.LastError{HTTPStatus: 400, Code: &code, FBTraceID: "AbCdEfGhIjKlMnOpQrStUv" + fmt.Sprint(i)}}
		if err := f.store.Park(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}

	code, out, _ := f.run(t, map[string]string{"COLUMNS": "80"}, "list", "--reason", "window")
	if code != 0 {
		t.Fatalf("list: %d %q", code, out)
	}
	for _, id := range ids {
		if !strings.Contains(out, id+" ") {
			t.Errorf("the table cut id %s:\n%s", id, out)
		}
	}
	if !strings.Contains(out, "…") {
		t.Errorf("an 80-column table of ids fits without cutting anything? (the test is wrong)\n%s", out)
	}
	// Not a terminal and no COLUMNS (a pipe, a file): nothing is cut.
	_, out, _ = f.run(t, nil, "list", "--reason", "window")
	if strings.Contains(out, "…") || !strings.Contains(out, "AbCdEfGhIjKlMnOpQrStUv0") {
		t.Errorf("a table to a pipe was cut:\n%s", out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if utf8.RuneCountInString(l) <= 100 {
			continue
		}
		return // wider than the old 100-column cap: good
	}
	t.Errorf("no line over 100 columns; the test does not show the old cap is gone:\n%s", out)
}

func TestDLQIDPrefix(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	ids := []string{"018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90", "018f6b1e-9999-7c4e-9d2a-3b5c6d7e8f91", "02aa0000-0000-7000-8000-000000000000", "a*b"}
	for _, id := range ids {
		if err := f.store.Park(context.Background(), &deadletter.Entry{ID: id, Reason: "invalid", ParkedAt: time.Now().UTC(),
			Job: json.RawMessage(fmt.Sprintf(`{"id":%q,"phone_number_id":"106540352242922","message":{"messaging_product":"whatsapp","to":"15550000100","type":"text","text":{"body":"hi"}}}`, id))}); err != nil {
			t.Fatal(err)
		}
	}
	// show: the whole id, a unique start, and with --json.
	for _, arg := range []string{ids[0], "018f6b1e-8", "02aa"} {
		code, out, errOut := f.run(t, nil, "show", arg, "--json")
		var e deadletter.Entry
		if code != 0 || json.Unmarshal([]byte(out), &e) != nil || !strings.HasPrefix(e.ID, arg) {
			t.Errorf("show %s: %d %q %q", arg, code, out, errOut)
		}
	}
	// A glob character in the start is the character, not a pattern.
	if code, out, errOut := f.run(t, nil, "show", "a*"); code != 0 || !strings.Contains(out, "a*b") {
		t.Errorf("show a*: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := f.run(t, nil, "show", "0*"); code != 1 || !strings.Contains(errOut, "no dead-letter entry") {
		t.Errorf("show 0* matched as a pattern: %d %q", code, errOut)
	}
	// Ambiguous: exit 1, the candidates on stderr, nothing on stdout.
	for _, args := range [][]string{{"show", "018f6b1e"}, {"show", "018f6b1e", "--json"}, {"purge", "018f6b1e"}, {"replay", "018f6b1e", "--dry-run"}} {
		code, out, errOut := f.run(t, nil, args...)
		if code != 1 || out != "" || !strings.Contains(errOut, ids[0]) || !strings.Contains(errOut, ids[1]) {
			t.Errorf("%v: %d %q %q", args, code, out, errOut)
		}
	}
	// replay and purge act on the entry a unique start names.
	code, out, errOut := f.run(t, nil, "replay", "02aa", "--dry-run", "--json")
	if code != 0 || !strings.Contains(out, `"id":"`+ids[2]+`"`) {
		t.Errorf("replay 02aa: %d %q %q", code, out, errOut)
	}
	code, out, errOut = f.run(t, nil, "purge", "018f6b1e-9", "--json")
	if code != 0 || !strings.Contains(out, `"id":"`+ids[1]+`","purged":true`) {
		t.Errorf("purge 018f6b1e-9: %d %q %q", code, out, errOut)
	}
	// An id nothing has stays as given and is reported not found.
	if code, out, _ := f.run(t, nil, "purge", "zzz", "--json"); code != 1 || !strings.Contains(out, `"id":"zzz"`) {
		t.Errorf("purge zzz: %d %q", code, out)
	}
}
