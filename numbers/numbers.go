// Package numbers is the registry of business phone numbers a worker serves:
// per number its WhatsApp Business Account, its pacing rate and the access
// token it sends with, read from the phone-number file (SPEC §3.2). Tokens
// are read from the environment variables the file names; they never sit in
// the file.
package numbers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/waqhq/waq/internal/yamlfile"
	"github.com/waqhq/waq/queue"
)

// DefaultMPS is the rate of a number the file does not give one for: Meta's
// default throughput of 80 messages per second.
const DefaultMPS = 80

// DefaultTokenEnv is the variable holding the token of numbers that name none.
const DefaultTokenEnv = "WAQ_ACCESS_TOKEN"

// Number is one business phone number.
type Number struct {
	PhoneNumberID string
	WABAID        string
	// MPS is the number's rate in messages per second: the file's mps, or
	// DefaultMPS when it gives none.
	MPS int
	// MPSSet is true when the file gives mps: an explicit override of the
	// rate that the number's throughput level on the Graph API would give.
	MPSSet   bool
	TokenEnv string
	// API is the Graph API endpoint the number's template jobs go to when
	// the job names none: "messages" (Cloud API) or "marketing_messages"
	// (Marketing Messages API). Defaults to "": the policy file's
	// defaults.api, failing that "messages". Other
	// message types always go to /messages: the Marketing Messages API
	// sends templates only.
	API string
	// Line is where the number is in the file (0 when not from a file).
	Line  int
	token string
}

// Registry maps phone number ids to numbers. A registry without a file
// serves every number with the default token and rate.
type Registry struct {
	byID         map[string]*Number
	defaultToken string
	file         string
}

// ErrNoToken means a number has no token to send with.
var ErrNoToken = errors.New("no access token for this phone number")

// FileError is a problem in the phone-number file, with its line.
type FileError struct {
	File    string
	Line    int
	Problem string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Problem)
	}
	return e.File + ": " + e.Problem
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Load reads the phone-number file at path (none when path is ""), taking
// tokens from getenv. Every listed number must have its token set.
func Load(path string, getenv func(string) string) (*Registry, error) {
	r := &Registry{byID: map[string]*Number{}, defaultToken: getenv(DefaultTokenEnv), file: path}
	if path == "" {
		return r, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("phone-number file: %w", err)
	}
	return r, r.parse(path, data, getenv)
}

// Parse is Load for data already read.
func Parse(name string, data []byte, getenv func(string) string) (*Registry, error) {
	r := &Registry{byID: map[string]*Number{}, defaultToken: getenv(DefaultTokenEnv), file: name}
	return r, r.parse(name, data, getenv)
}

func (r *Registry) parse(name string, data []byte, getenv func(string) string) error {
	var doc struct {
		PhoneNumbers []struct {
			PhoneNumberID yaml.Node `yaml:"phone_number_id"`
			WABAID        yaml.Node `yaml:"waba_id"`
			MPS           yaml.Node `yaml:"mps"`
			TokenEnv      yaml.Node `yaml:"token_env"`
			API           yaml.Node `yaml:"api"`
		} `yaml:"phone_numbers"`
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return &FileError{File: name, Problem: "the file is empty; want a mapping with a phone_numbers list"}
		}
		return yamlError(name, err, data)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return &FileError{File: name, Line: root.Line, Problem: "want a mapping with a phone_numbers list"}
	}
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return yamlError(name, err, data)
	}
	list := findKey(root.Content[0], "phone_numbers")
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		line := root.Content[0].Line
		if list != nil {
			line = list.Line
		}
		return &FileError{File: name, Line: line, Problem: "phone_numbers: want a list of at least one number"}
	}
	for i, item := range doc.PhoneNumbers {
		at := list.Content[i].Line
		field := func(key string) string { return fmt.Sprintf("phone_numbers[%d].%s", i, key) }
		var num Number
		num.Line = at
		if item.PhoneNumberID.Kind == 0 {
			return &FileError{File: name, Line: at, Problem: field("phone_number_id") + ": missing"}
		}
		num.PhoneNumberID = item.PhoneNumberID.Value
		if !digits(num.PhoneNumberID) {
			return &FileError{File: name, Line: item.PhoneNumberID.Line, Problem: field("phone_number_id") + fmt.Sprintf(": %q is not digits only", num.PhoneNumberID)}
		}
		if prev, dup := r.byID[num.PhoneNumberID]; dup {
			return &FileError{File: name, Line: item.PhoneNumberID.Line, Problem: fmt.Sprintf("phone number %s is listed twice (also on line %d)", num.PhoneNumberID, prev.Line)}
		}
		if item.WABAID.Kind == 0 {
			return &FileError{File: name, Line: at, Problem: field("waba_id") + ": missing"}
		}
		num.WABAID = item.WABAID.Value
		if !digits(num.WABAID) {
			return &FileError{File: name, Line: item.WABAID.Line, Problem: field("waba_id") + fmt.Sprintf(": %q is not digits only", num.WABAID)}
		}
		num.MPS = DefaultMPS
		if item.MPS.Kind != 0 {
			n, err := strconv.Atoi(item.MPS.Value)
			if err != nil || n < 1 || n > 10000 || item.MPS.Tag != "!!int" {
				return &FileError{File: name, Line: item.MPS.Line, Problem: field("mps") + fmt.Sprintf(": %q: want a whole number of messages per second from 1 to 10000", item.MPS.Value)}
			}
			num.MPS, num.MPSSet = n, true
		}
		num.TokenEnv = DefaultTokenEnv
		if item.TokenEnv.Kind != 0 {
			num.TokenEnv = item.TokenEnv.Value
			if !envName.MatchString(num.TokenEnv) {
				return &FileError{File: name, Line: item.TokenEnv.Line, Problem: field("token_env") + fmt.Sprintf(": %q is not an environment variable name", num.TokenEnv)}
			}
		}
		if item.API.Kind != 0 {
			if item.API.Value != queue.APIMessages && item.API.Value != queue.APIMarketingMessages || item.API.Tag != "!!str" {
				return &FileError{File: name, Line: item.API.Line, Problem: field("api") + fmt.Sprintf(": %q: want %s or %s", item.API.Value, queue.APIMessages, queue.APIMarketingMessages)}
			}
			num.API = item.API.Value
		}
		num.token = getenv(num.TokenEnv)
		if num.token == "" {
			line := at
			if item.TokenEnv.Kind != 0 {
				line = item.TokenEnv.Line
			}
			return &FileError{File: name, Line: line, Problem: fmt.Sprintf("phone number %s: its token variable %s is not set", num.PhoneNumberID, num.TokenEnv)}
		}
		n := num
		r.byID[num.PhoneNumberID] = &n
	}
	return nil
}

func findKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// yamlError turns a YAML library error into a FileError with its line.
func yamlError(name string, err error, data []byte) error {
	line, problem := yamlfile.Problem(err, data)
	return &FileError{File: name, Line: line, Problem: problem}
}

func digits(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Lookup returns the number with that id. A number the file does not list
// (or any number, without a file) is served with the default token and
// rate, when that token is set.
func (r *Registry) Lookup(id string) (Number, error) {
	if n, ok := r.byID[id]; ok {
		return *n, nil
	}
	if r.defaultToken == "" {
		if r.file != "" {
			return Number{}, fmt.Errorf("phone number %s is not in %s and %s is not set: %w", id, r.file, DefaultTokenEnv, ErrNoToken)
		}
		return Number{}, fmt.Errorf("phone number %s: %s is not set: %w", id, DefaultTokenEnv, ErrNoToken)
	}
	return Number{PhoneNumberID: id, MPS: DefaultMPS, TokenEnv: DefaultTokenEnv, token: r.defaultToken}, nil
}

// Endpoint is the Graph API endpoint (queue.APIMessages or
// queue.APIMarketingMessages) a job of this number goes to. The first that
// names one decides: the job's own api, then, for a template message, the
// number's api, then policyAPI (the policy file's defaults.api, "" for
// none); else /messages. A message that is not a template goes to
// /messages whatever the defaults say: the Marketing Messages API sends
// templates only.
func (n Number) Endpoint(jobAPI, policyAPI, messageType string) string {
	switch {
	case jobAPI != "":
		return jobAPI
	case messageType != "template":
		return queue.APIMessages
	case n.API != "":
		return n.API
	case policyAPI != "":
		return policyAPI
	}
	return queue.APIMessages
}

// Token is the number's access token. It is unexported data: callers pass it
// to the Graph client and nowhere else.
func (n Number) Token() string { return n.token }

// Listed returns the numbers of the file, by id.
func (r *Registry) Listed() []Number {
	out := make([]Number, 0, len(r.byID))
	for _, n := range r.byID {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PhoneNumberID < out[j].PhoneNumberID })
	return out
}

// HasDefaultToken reports whether unlisted numbers can send.
func (r *Registry) HasDefaultToken() bool { return r.defaultToken != "" }

// SameToken lists the numbers that send with the same token variable as n
// (a credential problem of that token affects all of them).
func (r *Registry) SameToken(tokenEnv string) []string {
	var out []string
	for id, n := range r.byID {
		if n.TokenEnv == tokenEnv {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
