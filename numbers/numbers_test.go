package numbers

import (
	"errors"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	data := `
phone_numbers:
  - phone_number_id: "106540352242922"
    waba_id: "102290129340398"
    mps: 1000
    token_env: WAQ_TOKEN_ACME
  - phone_number_id: "106540352242923"
    waba_id: "102290129340398"
`
	r, err := Parse("numbers.yaml", []byte(data), env(map[string]string{"WAQ_TOKEN_ACME": "a", "WAQ_ACCESS_TOKEN": "d"}))
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Lookup("106540352242922")
	if err != nil || n.MPS != 1000 || n.Token() != "a" || n.WABAID != "102290129340398" || n.Line != 3 {
		t.Errorf("first = %+v %v", n, err)
	}
	n, err = r.Lookup("106540352242923")
	if err != nil || n.MPS != DefaultMPS || n.Token() != "d" || n.TokenEnv != DefaultTokenEnv {
		t.Errorf("second = %+v %v", n, err)
	}
	// An unlisted number is served with the default token and rate.
	n, err = r.Lookup("999")
	if err != nil || n.Token() != "d" || n.MPS != 80 {
		t.Errorf("unlisted = %+v %v", n, err)
	}
	if got := r.SameToken(DefaultTokenEnv); len(got) != 1 || got[0] != "106540352242923" {
		t.Errorf("SameToken = %v", got)
	}
	if len(r.Listed()) != 2 {
		t.Errorf("listed = %v", r.Listed())
	}
}

func TestEndpoint(t *testing.T) {
	data := "phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    api: marketing_messages\n  - phone_number_id: \"3\"\n    waba_id: \"2\"\n    api: messages\n"
	r, err := Parse("numbers.yaml", []byte(data), env(map[string]string{"WAQ_ACCESS_TOKEN": "d"}))
	if err != nil {
		t.Fatal(err)
	}
	mm, _ := r.Lookup("1")
	cloud, _ := r.Lookup("3")
	unlisted, _ := r.Lookup("9")
	tests := []struct {
		n                   Number
		api, policyAPI, typ string
		want                string
	}{
		{mm, "", "", "template", "marketing_messages"},
		{mm, "", "", "text", "messages"}, // the Marketing Messages API sends templates only
		{mm, "messages", "", "template", "messages"},
		{cloud, "", "", "template", "messages"},
		{cloud, "marketing_messages", "", "template", "marketing_messages"},
		{unlisted, "", "", "template", "messages"},
		{unlisted, "marketing_messages", "", "template", "marketing_messages"},
		// The policy's default: under the job's and the number's, over the
		// built-in /messages, for templates only.
		{unlisted, "", "marketing_messages", "template", "marketing_messages"},
		{unlisted, "", "marketing_messages", "text", "messages"},
		{unlisted, "", "marketing_messages", "interactive", "messages"},
		{unlisted, "", "messages", "template", "messages"},
		{unlisted, "messages", "marketing_messages", "template", "messages"},
		{cloud, "", "marketing_messages", "template", "messages"}, // the number's explicit messages wins
		{mm, "", "messages", "template", "marketing_messages"},
		{mm, "", "marketing_messages", "text", "messages"},
	}
	for _, tt := range tests {
		if got := tt.n.Endpoint(tt.api, tt.policyAPI, tt.typ); got != tt.want {
			t.Errorf("number %s (api %q), job api %q, policy api %q, type %s: %s, want %s", tt.n.PhoneNumberID, tt.n.API, tt.api, tt.policyAPI, tt.typ, got, tt.want)
		}
	}
}

func TestNoFile(t *testing.T) {
	r, err := Load("", env(map[string]string{"WAQ_ACCESS_TOKEN": "t"}))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Lookup("1"); err != nil || n.Token() != "t" || n.MPS != 80 {
		t.Errorf("%+v %v", n, err)
	}
	r, _ = Load("", env(nil))
	if _, err := r.Lookup("1"); !errors.Is(err, ErrNoToken) {
		t.Errorf("without a token: %v", err)
	}
}

func TestParseBad(t *testing.T) {
	tok := env(map[string]string{"T": "x", "WAQ_ACCESS_TOKEN": "d"})
	tests := []struct{ data, want string }{
		{``, "numbers.yaml: the file is empty"},
		{`- a`, "numbers.yaml:1: want a mapping"},
		{`phone_numbers: []`, "numbers.yaml:1: phone_numbers: want a list"},
		{`other: 1`, "numbers.yaml:1: unknown field \"other\""},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    colour: blue\n", "numbers.yaml:4: unknown field \"colour\""},
		{"phone_numbers:\n  - waba_id: \"2\"\n", "numbers.yaml:2: phone_numbers[0].phone_number_id: missing"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n", "numbers.yaml:2: phone_numbers[0].waba_id: missing"},
		{"phone_numbers:\n  - phone_number_id: \"+1 555\"\n    waba_id: \"2\"\n", "numbers.yaml:2: phone_numbers[0].phone_number_id: \"+1 555\" is not digits only"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: acme\n", "numbers.yaml:3: phone_numbers[0].waba_id: \"acme\" is not digits only"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    mps: fast\n", "numbers.yaml:4: phone_numbers[0].mps: \"fast\""},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    mps: 0\n", "numbers.yaml:4: phone_numbers[0].mps: \"0\""},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    mps: 1.5\n", "numbers.yaml:4: phone_numbers[0].mps"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    token_env: \"not a var\"\n", "numbers.yaml:4: phone_numbers[0].token_env"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    token_env: UNSET_VAR\n", "numbers.yaml:4: phone number 1: its token variable UNSET_VAR is not set"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n  - phone_number_id: \"1\"\n    waba_id: \"3\"\n", "numbers.yaml:4: phone number 1 is listed twice (also on line 2)"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n   waba_id: \"2\"\n", "numbers.yaml:2: did not find expected"},
		{"phone_numbers: {a: 1}\n", "numbers.yaml:1:"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    api: marketing\n", "numbers.yaml:4: phone_numbers[0].api: \"marketing\": want messages or marketing_messages"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    api: \"\"\n", "numbers.yaml:4: phone_numbers[0].api: \"\""},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    api: [marketing_messages]\n", "numbers.yaml:4: phone_numbers[0].api"},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    api: MARKETING_MESSAGES\n", "numbers.yaml:4: phone_numbers[0].api"},
	}
	for _, tt := range tests {
		_, err := Parse("numbers.yaml", []byte(tt.data), tok)
		var fe *FileError
		if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want prefix %q", tt.data, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is more than one line: %q", tt.data, err)
		}
	}
	_, err := Parse("numbers.yaml", []byte("phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "WAQ_ACCESS_TOKEN is not set") {
		t.Errorf("missing default token: %v", err)
	}
}
