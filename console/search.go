package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

// Search finds entries by job id, fbtrace_id, wamid or recipient; the job
// page shows what became of a job that is no longer parked (what a replay
// produced). A recipient is searched by its hash (waq.recipient.hash, as
// spans and logs show it), or by the number typed into a POST form that
// the console hashes at once: the number is never in a URL or a log line.

type searchData struct {
	Q        string
	Res      *deadletter.SearchResult
	Rows     []row
	JobHref  string // the job the query names, when it is not parked
	CanHash  bool   // the recipient form is offered
	CanWAMID bool
}

func (c *Console) searchOptions() deadletter.SearchOptions {
	o := deadletter.SearchOptions{HashRecipient: c.opts.HashRecipient}
	if c.opts.Ledger != nil {
		o.JobByWAMID = c.opts.Ledger.JobByWAMID
	}
	return o
}

func (c *Console) search(w http.ResponseWriter, r *http.Request, s session) {
	d := searchData{CanHash: c.opts.HashRecipient != nil, CanWAMID: c.opts.Ledger != nil}
	q := r.URL.Query()
	for k := range q {
		if k != "q" {
			c.fail(w, r, s, http.StatusBadRequest, "The search takes q only.")
			return
		}
	}
	d.Q = strings.TrimSpace(q.Get("q"))
	if d.Q == "" {
		c.render(w, http.StatusOK, "search", page{Title: "Search", Nav: "search", CSRF: s.csrf, Data: d})
		return
	}
	c.runSearch(w, r, s, d, deadletter.Query{Text: d.Q})
}

// searchRecipient is the form with a number or a business-scoped user ID:
// hashed here, searched by the hash, the recipient not echoed back.
func (c *Console) searchRecipient(w http.ResponseWriter, r *http.Request, s session) {
	d := searchData{CanHash: c.opts.HashRecipient != nil, CanWAMID: c.opts.Ledger != nil}
	to := strings.TrimPrefix(strings.TrimSpace(r.PostForm.Get("to")), "+")
	if c.opts.HashRecipient == nil {
		c.fail(w, r, s, http.StatusServiceUnavailable, "This console cannot hash recipients (it has no hash key); search by the hash a span or log line shows.")
		return
	}
	if err := queue.ValidateRecipient(to); err != nil && !queue.IsUserID(to) {
		c.render(w, http.StatusBadRequest, "search", page{Title: "Search", Nav: "search", CSRF: s.csrf, Error: "That is not a recipient: digits with the country code, or a business-scoped user id.", Data: d})
		return
	}
	c.runSearch(w, r, s, d, deadletter.Query{RecipientHash: c.opts.HashRecipient(to)})
}

func (c *Console) runSearch(w http.ResponseWriter, r *http.Request, s session, d searchData, q deadletter.Query) {
	res, err := c.opts.Store.Search(r.Context(), q, c.searchOptions(), 200)
	if err != nil {
		var pe *deadletter.ParamError
		if errors.As(err, &pe) {
			c.render(w, http.StatusBadRequest, "search", page{Title: "Search", Nav: "search", CSRF: s.csrf, Error: pe.Error(), Data: d})
			return
		}
		c.storeFailed(w, r, s, "search", err)
		return
	}
	d.Res = res
	for _, e := range res.Entries {
		d.Rows = append(d.Rows, row{Summary: e.Summary(), Href: entryHref(e.ID), To: mask(e.Addressee())})
	}
	if res.JobID != "" && len(res.Entries) == 0 {
		d.JobHref = jobHref(res.JobID)
	}
	if res.By == deadletter.ByRecipientHash && d.Q == "" {
		d.Q = res.Value // the hash, never the number
	}
	c.render(w, http.StatusOK, "search", page{Title: "Search", Nav: "search", CSRF: s.csrf, Data: d})
}

func jobHref(id string) string { return Prefix + "job/" + url.PathEscape(id) }

type jobData struct {
	ID     string
	State  *ledger.State
	Steps  []step
	NoData bool // no ledger here
	None   bool // the ledger has no record
}

// job shows what became of a job: its entry when it is parked, else the
// sent record (wamid, delivery status, attempts), as `waq job show` does.
func (c *Console) job(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if len(r.URL.Query()) > 0 {
		c.fail(w, r, s, http.StatusBadRequest, "A job's page takes no parameters.")
		return
	}
	if err := queue.ValidateID(id); err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "That is not a job id: "+err.Error())
		return
	}
	if _, err := c.opts.Store.Show(r.Context(), id); err == nil {
		http.Redirect(w, r, entryHref(id), http.StatusSeeOther)
		return
	} else if !errors.Is(err, deadletter.ErrNotFound) {
		c.storeFailed(w, r, s, "job", err)
		return
	}
	d := jobData{ID: id, NoData: c.opts.Ledger == nil}
	if c.opts.Ledger != nil {
		st, err := c.opts.Ledger.Load(r.Context(), id)
		var h []ledger.Attempt
		if err == nil {
			h, err = c.opts.Ledger.History(r.Context(), id)
		}
		if err != nil {
			if errors.Is(r.Context().Err(), context.Canceled) {
				return
			}
			c.fail(w, r, s, http.StatusServiceUnavailable, "The job records did not answer: "+err.Error())
			return
		}
		d.State = &st
		d.None = !st.Sent() && st.Parked == "" && st.Gen == 0 && len(h) == 0
		for _, a := range h {
			d.Steps = append(d.Steps, step{Attempt: a, Class: "o-" + a.Outcome, Code: codeText(a.Code), Error: a.Error, TraceLink: traceLink(c.opts.TraceURL, a.TraceID)})
		}
	}
	c.render(w, http.StatusOK, "job", page{Title: "Job " + id, Nav: "search", CSRF: s.csrf, Data: d})
}
