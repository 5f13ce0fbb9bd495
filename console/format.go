package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/waqhq/waq/deadletter"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"mask":   mask,
	"when":   when,
	"ago":    ago,
	"num":    func(n int) string { return num(float64(n)) },
	"code":   codeText,
	"f1":     func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"ms":     func(n int64) string { return (time.Duration(n) * time.Millisecond).String() },
	"or":     func(a, b string) string { return orDash(a, b) },
	"plural": func(n int, word string) string { return plural(n, word) },
}

// mask hides a recipient's number or business-scoped user ID but its
// last characters (the one masking of pages, previews and results:
// deadletter.MaskRecipient).
func mask(s string) string { return deadletter.MaskRecipient(s) }

// masker hides one recipient's number wherever it appears in a text of
// its entry (the job as published, an error's message or details).
type masker struct{ to []string }

func newMasker(to string) masker {
	var m masker
	if len(to) >= 5 {
		m.to = append(m.to, to)
		// The job may carry the number with a plus; the entry without.
		if d := strings.TrimPrefix(to, "+"); d != to && len(d) >= 5 {
			m.to = append(m.to, d)
		}
	}
	return m
}

func (m *masker) text(s string) string {
	for _, t := range m.to {
		s = strings.ReplaceAll(s, t, mask(t))
	}
	return s
}

// job renders a job as published (or a message object), indented, with
// the recipient masked: the "to" (or "recipient") of its message
// explicitly (whatever it holds), then every other place it appears.
func (m *masker) job(raw []byte) string {
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return m.text(string(raw))
	}
	for _, obj := range []any{v, v["message"]} {
		if msg, ok := obj.(map[string]any); ok {
			for _, k := range []string{"to", "recipient"} {
				if to, ok := msg[k].(string); ok && to != "" {
					m.to = append(m.to, to)
					msg[k] = mask(to)
				}
			}
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if enc.Encode(v) != nil {
		return m.text(string(raw))
	}
	return m.text(strings.TrimSpace(b.String()))
}

// when writes a time in UTC to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// ago writes how long before now t was, roughly: "3m ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "in " + roughDur(-d)
	case d < 5*time.Second:
		return "just now"
	}
	return roughDur(d) + " ago"
}

func roughDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

func codeText(c *int) string {
	if c == nil {
		return "—"
	}
	return strconv.Itoa(*c)
}

func orDash(a, b string) string {
	if a != "" {
		return a
	}
	if b != "" {
		return b
	}
	return "—"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if w, ok := strings.CutSuffix(word, "y"); ok && !strings.HasSuffix(w, "a") && !strings.HasSuffix(w, "e") && !strings.HasSuffix(w, "o") {
		return num(float64(n)) + " " + w + "ies" // entry, entries
	}
	return num(float64(n)) + " " + word + "s"
}

// traceLink fills the tracing UI's link template with a trace id; "" when
// there is no template or no id. The id is escaped, the template is the
// operator's; html/template refuses a link that is not http(s).
func traceLink(tmpl, traceID string) string {
	if tmpl == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(tmpl, "{trace_id}", url.PathEscape(traceID))
}
