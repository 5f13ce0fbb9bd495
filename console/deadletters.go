package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
)

// pageSize is the console's default page of dead letters: what fits on a
// screen or two. ?limit= takes up to deadletter.MaxLimit, as the CLI does.
const pageSize = "50"

// filterParams are the query parameters of the list, named like the
// flags of `waq dlq list`.
var filterParams = []string{"reason", "code", "phone_number_id", "template", "since"}

// params reads the filter parameters of a request and refuses any it does
// not know (a typo would otherwise select everything).
func params(q url.Values, allowed ...string) (deadletter.Params, error) {
	for k := range q {
		ok := false
		for _, a := range append(filterParams, allowed...) {
			ok = ok || k == a
		}
		if !ok {
			return deadletter.Params{}, &deadletter.ParamError{Name: k, Problem: "unknown parameter"}
		}
		if k != "id" && len(q[k]) > 1 {
			return deadletter.Params{}, &deadletter.ParamError{Name: k, Problem: "given more than once"}
		}
	}
	return deadletter.Params{
		IDs: q["id"], Reason: q.Get("reason"), Code: q.Get("code"), PhoneNumberID: q.Get("phone_number_id"),
		Template: q.Get("template"), Since: q.Get("since"), Limit: q.Get("limit"), Cursor: q.Get("cursor"),
		OlderThan: q.Get("older_than"), AsTemplate: q.Get("as_template"), Language: q.Get("language"),
	}, nil
}

// filterQuery is the query string of a filter's parameters (and extra
// key-value pairs), for links that keep the filter.
func filterQuery(p deadletter.Params, extra ...string) string {
	v := url.Values{}
	for k, s := range map[string]string{"reason": p.Reason, "code": p.Code, "phone_number_id": p.PhoneNumberID, "template": p.Template, "since": p.Since} {
		if s != "" {
			v.Set(k, s)
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" {
			v.Set(extra[i], extra[i+1])
		}
	}
	return v.Encode()
}

// row is one dead letter in the list.
type row struct {
	deadletter.Summary
	Href string
	To   string // masked
}

type listData struct {
	P       deadletter.Params
	Reasons []string
	Stats   *deadletter.Stats
	Rows    []row
	Next    string // link to the next page, "" on the last
	First   string // link to the first page, "" on it
	// The actions on the filter; a purge by reason takes no since (it
	// takes older_than).
	ReplayHref, PurgeHref, ExportHref string
	// Here is this page, where the actions on ticked entries return.
	Here    string
	Limit   string
	HasMore bool
}

func (c *Console) list(w http.ResponseWriter, r *http.Request, s session) {
	d := listData{Reasons: reasons}
	p, err := params(r.URL.Query(), "limit", "cursor")
	d.P = p
	if err == nil {
		if p.Limit == "" {
			p.Limit = pageSize
		}
		d.Limit = p.Limit
		d.ReplayHref = Prefix + "replay?" + filterQuery(p)
		d.PurgeHref = Prefix + "purge?" + filterQuery(deadletter.Params{Reason: p.Reason, Code: p.Code, PhoneNumberID: p.PhoneNumberID, Template: p.Template})
		d.ExportHref = Prefix + "export?" + filterQuery(p)
		d.Here = r.URL.RequestURI()
		var (
			f      deadletter.Filter
			cursor string
			limit  int
		)
		f, cursor, limit, err = p.ListArgs()
		if err == nil {
			d.Stats, err = c.opts.Store.Stats(r.Context(), f)
		}
		var pg deadletter.Page
		if err == nil {
			pg, err = c.opts.Store.List(r.Context(), f, cursor, limit)
		}
		if err == nil {
			for _, e := range pg.Entries {
				d.Rows = append(d.Rows, row{Summary: e.Summary(), Href: entryHref(e.ID), To: mask(e.Addressee())})
			}
			if pg.Next != "" {
				d.Next = Prefix + "dlq?" + filterQuery(p, "limit", limitParam(p.Limit), "cursor", pg.Next)
			}
			if cursor != "" {
				d.First = Prefix + "dlq?" + filterQuery(p, "limit", limitParam(p.Limit))
			}
		}
	}
	var pe *deadletter.ParamError
	if errors.As(err, &pe) {
		// The page with its form, so that the operator can fix the filter.
		c.render(w, http.StatusBadRequest, "list", page{Title: "Dead letters", Nav: "dlq", CSRF: s.csrf, Error: pe.Error(), Data: d})
		return
	}
	if err != nil {
		c.storeFailed(w, r, s, "list", err)
		return
	}
	c.render(w, http.StatusOK, "list", page{Title: "Dead letters", Nav: "dlq", CSRF: s.csrf, Data: d})
}

// limitParam keeps a page size in links only when it is not the default.
func limitParam(l string) string {
	if l == pageSize {
		return ""
	}
	return l
}

func entryHref(id string) string { return Prefix + "dlq/" + url.PathEscape(id) }

// field is one named value of the last error.
type field struct {
	Name, Value string
}

// step is one attempt on the timeline.
type step struct {
	ledger.Attempt
	After     string // since the first attempt
	Class     string
	Code      string
	Error     string // masked
	TraceLink string
}

type entryData struct {
	E           *deadletter.Entry
	To          string
	Job         string
	Raw         string
	Problem     string
	Error       []field
	FBTraceID   string
	TraceLink   string
	TraceURLSet bool
	Steps       []step
	FreeForm    bool
	Code        string
	Export      string
	// Back is the list of the entry's reason: where an action on it
	// returns, since the entry itself is gone after one.
	Back string
	// Advice is the next step (policy.AdviceFor); a replay it says cannot
	// help is not offered, one that helps only after a fix carries the
	// warning.
	Advice            policy.Advice
	OfferAsIs         bool
	OfferAsTemplate   bool
	AsIsWarning       string
	AsTemplateWarning string
}

func (c *Console) entry(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if len(r.URL.Query()) > 0 {
		c.fail(w, r, s, http.StatusBadRequest, "An entry's page takes no parameters.")
		return
	}
	if err := queue.ValidateID(id); err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "That is not a job id: "+err.Error())
		return
	}
	e, err := c.opts.Store.Show(r.Context(), id)
	if err != nil {
		c.storeFailed(w, r, s, "show", err)
		return
	}
	m := newMasker(e.Addressee())
	// The job first: its message's "to" joins what the texts mask.
	job := ""
	if len(e.Job) > 0 {
		job = m.job(e.Job)
	}
	d := entryData{E: e, To: mask(e.Addressee()), Problem: deadletter.MaskNumbers(m.text(e.Problem)), FBTraceID: e.FBTraceID(),
		TraceLink: traceLink(c.opts.TraceURL, e.TraceID), TraceURLSet: c.opts.TraceURL != "",
		FreeForm: e.MessageType != "template" && len(e.Job) > 0}
	d.Job = job
	if len(e.Raw) > 0 {
		// A body that is not a job has no recipient field to mask by.
		d.Raw = deadletter.MaskNumbers(m.text(string(e.Raw)))
	}
	if e.Addressee() == "" && job != "" {
		d.Job = deadletter.MaskNumbers(job)
	}
	d.Advice = e.Advice()
	d.OfferAsIs, d.OfferAsTemplate = d.Advice.Offers(false), d.FreeForm && d.Advice.Offers(true)
	d.AsIsWarning, d.AsTemplateWarning = d.Advice.ReplayWarning(false), d.Advice.ReplayWarning(true)
	le := e.LastError
	if le == nil {
		le = &deadletter.LastError{}
	}
	itoa := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	code := ""
	if le.Code != nil {
		code = strconv.Itoa(*le.Code)
	}
	d.Code = code
	d.Error = []field{
		{"http_status", itoa(le.HTTPStatus)}, {"code", code}, {"error_subcode", itoa(le.Subcode)},
		{"type", le.Type}, {"title", m.text(le.Title)}, {"message", m.text(le.Message)},
		{"error_data.details", m.text(le.Details)}, {"error_user_title", m.text(le.UserTitle)},
		{"error_user_msg", m.text(le.UserMsg)}, {"fbtrace_id", le.FBTraceID}, {"transport", m.text(le.Transport)},
	}
	var first time.Time
	for i, a := range e.Attempts {
		if i == 0 {
			first = a.At
		}
		st := step{Attempt: a, Class: "o-" + a.Outcome, Code: codeText(a.Code), Error: m.text(a.Error), TraceLink: traceLink(c.opts.TraceURL, a.TraceID)}
		if i > 0 && !a.At.IsZero() && !first.IsZero() {
			st.After = "+" + a.At.Sub(first).Round(time.Millisecond).String()
		}
		d.Steps = append(d.Steps, st)
	}
	d.Export = Prefix + "export?" + filterQuery(deadletter.Params{Reason: e.Reason, Code: code})
	d.Back = Prefix + "dlq?" + filterQuery(deadletter.Params{Reason: e.Reason})
	c.render(w, http.StatusOK, "entry", page{Title: "Entry " + e.ID, Nav: "dlq", CSRF: s.csrf, Data: d})
}
