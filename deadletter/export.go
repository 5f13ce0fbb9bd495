package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/waqhq/waq/policy"
)

// Export is what Meta support asks for in a ticket, for the entries a
// filter selects, grouped by error: the request, the full error answer
// with its fbtrace_id, when it was first and last seen, how often, and
// which numbers, templates and recipients it affects.
type Export struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Filter is the selection, as the parameters named it.
	Filter map[string]string `json:"filter"`
	// Total is the number of entries; Verdict the isolation verdict of
	// stats over them.
	Total   int    `json:"total"`
	Verdict string `json:"verdict"`
	// Advice is the next step when the entries share one code or reason.
	Advice *policy.Advice `json:"advice,omitempty"`
	Groups []*ExportGroup `json:"groups"`
}

// ExportGroup is the entries that failed with one error: reason, code and
// subcode (or transport failure).
type ExportGroup struct {
	Reason  string `json:"reason"`
	Code    *int   `json:"code"`
	Subcode int    `json:"error_subcode,omitempty"`
	// Transport names a failure without an answer (timeout, HTML page).
	Transport string `json:"transport,omitempty"`
	// Advice is the next step for this error (policy.AdviceFor): what to
	// check first, which replay fits, when to open the ticket at all.
	Advice policy.Advice `json:"advice"`
	// Count is the entries; Sends the failed sends with this error among
	// their attempts, replays included.
	Count int `json:"count"`
	Sends int `json:"sends"`
	// FirstSeen and LastSeen bound the attempts that failed with this
	// error (the parked time, when no attempt is recorded).
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// PhoneNumbers, Templates and Recipients are the values affected, most
	// frequent first; Recipients is cut at MaxExportValues, RecipientCount
	// is the whole number.
	PhoneNumbers   []Counted `json:"phone_numbers"`
	Templates      []Counted `json:"templates"`
	Recipients     []Counted `json:"recipients"`
	RecipientCount int       `json:"recipient_count"`
	// FBTraceIDs are the fbtrace_ids of the last failures, newest first
	// (at most MaxExportValues): what Meta looks a failure up by.
	FBTraceIDs []string `json:"fbtrace_ids"`
	// Examples are the newest entries of the group, with their request and
	// the full error answer (at most MaxExportExamples).
	Examples []ExportExample `json:"examples"`

	recipients map[string]int
	numbers    map[string]int
	templates  map[string]int
}

// Counted is a value and how many entries have it.
type Counted struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// ExportExample is one entry as a ticket shows it.
type ExportExample struct {
	ID       string    `json:"id"`
	ParkedAt time.Time `json:"parked_at"`
	TraceID  string    `json:"trace_id,omitempty"`
	// Request is the call the worker made: method and path, and the
	// message object it sent as the body.
	Request string          `json:"request"`
	Body    json.RawMessage `json:"body,omitempty"`
	// Error is the full error answer of the attempt that parked it.
	Error    *LastError `json:"error,omitempty"`
	Problem  string     `json:"problem,omitempty"`
	Attempts int        `json:"attempts"`
}

// Bounds of an export: enough for support to act, small enough to paste.
const (
	MaxExportValues   = 100
	MaxExportExamples = 3
)

// Export gathers the entries f selects into a ticket, grouped by error,
// largest group first.
func (s *Store) Export(ctx context.Context, f Filter) (*Export, error) {
	st, err := s.Stats(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	x := &Export{GeneratedAt: s.now().UTC(), Filter: f.Params(), Verdict: st.Verdict, Advice: st.Advice, Groups: []*ExportGroup{}}
	groups := map[string]*ExportGroup{}
	err = s.scan(ctx, f, "", listFields, func(rows []row) (bool, error) {
		for _, r := range rows {
			e, err := decodeEntry([]byte(r.fields[5]))
			if err != nil {
				continue
			}
			x.Total++
			g := groupOf(groups, e)
			g.addEntry(e)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, g := range groups {
		g.finish()
		x.Groups = append(x.Groups, g)
	}
	sort.SliceStable(x.Groups, func(a, b int) bool { return x.Groups[a].Count > x.Groups[b].Count })
	return x, nil
}

// groupOf returns the group of e's error, made on first use.
func groupOf(groups map[string]*ExportGroup, e *Entry) *ExportGroup {
	g := &ExportGroup{Reason: e.Reason}
	if e.LastError != nil {
		g.Code, g.Subcode, g.Transport = e.LastError.Code, e.LastError.Subcode, e.LastError.Transport
	}
	key := g.Reason + "|" + e.codeKey() + "|" + strconv.Itoa(g.Subcode) + "|" + g.Transport
	if have, ok := groups[key]; ok {
		return have
	}
	g.recipients, g.numbers, g.templates = map[string]int{}, map[string]int{}, map[string]int{}
	g.Advice = e.Advice()
	groups[key] = g
	return g
}

// addEntry counts one entry into the group. Entries come newest first, so
// the first examples and fbtrace_ids are the newest.
func (g *ExportGroup) addEntry(e *Entry) {
	g.Count++
	if who := e.Addressee(); who != "" {
		g.recipients[who]++
	}
	if e.PhoneNumberID != "" {
		g.numbers[e.PhoneNumberID]++
	}
	if e.Template != "" {
		g.templates[e.Template]++
	}
	seen := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if g.FirstSeen.IsZero() || t.Before(g.FirstSeen) {
			g.FirstSeen = t.UTC()
		}
		if t.After(g.LastSeen) {
			g.LastSeen = t.UTC()
		}
	}
	matched := 0
	for _, a := range e.Attempts {
		if a.Outcome != "failed" && a.Outcome != "throttled" && a.Outcome != "paused" {
			continue
		}
		if (a.Code == nil) != (g.Code == nil) || a.Code != nil && *a.Code != *g.Code {
			continue
		}
		matched++
		seen(a.At)
	}
	g.Sends += matched
	if matched == 0 {
		seen(e.ParkedAt)
	}
	if fb := e.FBTraceID(); fb != "" && len(g.FBTraceIDs) < MaxExportValues {
		g.FBTraceIDs = append(g.FBTraceIDs, fb)
	}
	if len(g.Examples) < MaxExportExamples {
		ex := ExportExample{ID: e.ID, ParkedAt: e.ParkedAt.UTC(), TraceID: e.TraceID, Error: e.LastError, Problem: e.Problem, Attempts: e.sends(),
			Request: "POST /{version}/" + e.PhoneNumberID + "/messages"}
		var job struct {
			Message json.RawMessage `json:"message"`
		}
		if len(e.Job) > 0 && json.Unmarshal(e.Job, &job) == nil {
			ex.Body = job.Message
		}
		g.Examples = append(g.Examples, ex)
	}
}

func (g *ExportGroup) finish() {
	g.PhoneNumbers = counted(g.numbers, 0)
	g.Templates = counted(g.templates, 0)
	g.Recipients = counted(g.recipients, MaxExportValues)
	g.RecipientCount = len(g.recipients)
	if g.FBTraceIDs == nil {
		g.FBTraceIDs = []string{}
	}
}

// counted sorts a tally, most frequent first, cut at max (0: all).
func counted(m map[string]int, max int) []Counted {
	out := make([]Counted, 0, len(m))
	for v, n := range m {
		out = append(out, Counted{v, n})
	}
	sort.Slice(out, func(a, b int) bool {
		return out[a].Count > out[b].Count || out[a].Count == out[b].Count && out[a].Value < out[b].Value
	})
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// Params is the filter as the parameters that select it.
func (f Filter) Params() map[string]string {
	m := map[string]string{}
	if f.Reason != "" {
		m["reason"] = f.Reason
	}
	if f.Code != nil {
		m["code"] = strconv.Itoa(*f.Code)
	}
	if f.PhoneNumberID != "" {
		m["phone_number_id"] = f.PhoneNumberID
	}
	if f.Template != "" {
		m["template"] = f.Template
	}
	if f.Recipient != "" {
		m["recipient"] = f.Recipient
	}
	if f.Since > 0 {
		m["since"] = f.Since.String()
	}
	return m
}

// WriteText writes the export as a person reads it, ready to paste into a
// support ticket.
func (x *Export) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "WhatsApp Cloud API failures, exported %s\n", x.GeneratedAt.Format(time.RFC3339))
	if len(x.Filter) > 0 {
		keys := make([]string, 0, len(x.Filter))
		for k := range x.Filter {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + x.Filter[k]
		}
		fmt.Fprintf(&b, "Selection: %s\n", strings.Join(parts, " "))
	}
	fmt.Fprintf(&b, "Failed messages: %d in %d groups\nSummary: %s\n", x.Total, len(x.Groups), x.Verdict)
	for i, g := range x.Groups {
		fmt.Fprintf(&b, "\n== %d. %s ==\n", i+1, g.title())
		fmt.Fprintf(&b, "Messages:        %d (%d failed sends)\n", g.Count, g.Sends)
		fmt.Fprintf(&b, "Next step:       %s\n", g.Advice.Next)
		if g.Advice.Check != "" {
			fmt.Fprintf(&b, "Check:           %s\n", g.Advice.Check)
		}
		if g.Advice.Ticket != "" {
			fmt.Fprintf(&b, "Ticket:          %s\n", g.Advice.Ticket)
		} else {
			fmt.Fprintf(&b, "Ticket:          Meta support cannot change this outcome; the next step is yours.\n")
		}
		fmt.Fprintf(&b, "First seen:      %s\nLast seen:       %s\n", g.FirstSeen.Format(time.RFC3339), g.LastSeen.Format(time.RFC3339))
		fmt.Fprintf(&b, "Phone number ids: %s\n", joinCounted(g.PhoneNumbers, len(g.PhoneNumbers)))
		if len(g.Templates) > 0 {
			fmt.Fprintf(&b, "Templates:       %s\n", joinCounted(g.Templates, len(g.Templates)))
		} else {
			fmt.Fprintf(&b, "Templates:       none (free-form messages)\n")
		}
		fmt.Fprintf(&b, "Recipients:      %s\n", joinCounted(g.Recipients, g.RecipientCount))
		if len(g.FBTraceIDs) > 0 {
			fmt.Fprintf(&b, "fbtrace_ids:     %s\n", strings.Join(g.FBTraceIDs, ", "))
		}
		for j, ex := range g.Examples {
			fmt.Fprintf(&b, "\n  Example %d: job %s, parked %s after %d sends", j+1, ex.ID, ex.ParkedAt.Format(time.RFC3339), ex.Attempts)
			if ex.TraceID != "" {
				fmt.Fprintf(&b, ", trace %s", ex.TraceID)
			}
			fmt.Fprintf(&b, "\n  Request: %s\n", ex.Request)
			if len(ex.Body) > 0 {
				fmt.Fprintf(&b, "  %s\n", indentJSON(ex.Body, "  "))
			}
			if ex.Error != nil {
				ans, _ := json.Marshal(struct {
					Error *LastError `json:"error"`
				}{ex.Error})
				fmt.Fprintf(&b, "  Error response:\n  %s\n", indentJSON(ans, "  "))
			} else if ex.Problem != "" {
				fmt.Fprintf(&b, "  Problem: %s\n", ex.Problem)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// title names the group's error in one line.
func (g *ExportGroup) title() string {
	var parts []string
	if g.Code != nil {
		parts = append(parts, "error "+strconv.Itoa(*g.Code))
		if g.Subcode != 0 {
			parts = append(parts, "subcode "+strconv.Itoa(g.Subcode))
		}
	} else if g.Transport != "" {
		parts = append(parts, "no answer ("+g.Transport+")")
	} else {
		parts = append(parts, "no error code")
	}
	if len(g.Examples) > 0 && g.Examples[0].Error != nil && g.Examples[0].Error.Title != "" {
		parts = append(parts, g.Examples[0].Error.Title)
	}
	return strings.Join(parts, ": ") + " (parked as " + g.Reason + ")"
}

func joinCounted(cs []Counted, total int) string {
	if len(cs) == 0 {
		return "-"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Value + " (" + strconv.Itoa(c.Count) + ")"
	}
	s := strings.Join(parts, ", ")
	if total > len(cs) {
		s += fmt.Sprintf(" and %d more", total-len(cs))
	}
	return s
}

func indentJSON(raw []byte, prefix string) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, prefix, "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
