package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/queue"
)

// Replay and purge go in two steps: a GET shows the dry run of what was
// asked (deadletter's own dry run) and a form; the POST acts on exactly
// the entries the preview showed, each at the generation it showed. An
// entry parked again since (a newer generation) or gone is left alone, so
// that a confirm sent twice (a reload) never replays a job twice.

// errEnough stops a dry run that has shown deadletter.MaxIDs entries: one
// confirm acts on at most that many.
var errEnough = errors.New("preview full")

// nothingChosen is the console's words for deadletter's "needs ids or a
// reason" (which names the CLI's flags): the operator came from the list.
var nothingChosen = &deadletter.ParamError{Problem: "Nothing is selected: tick entries in the list, or filter it by a reason, then choose the action again."}

// outcome is one entry's line in a preview or a result.
type outcome struct {
	ID         string
	Href       string
	OK         bool
	Generation int
	Error      string
	// Brief is what the line shows of the entry (recipient masked);
	// Warning says the replay cannot help, or only after a fix.
	deadletter.Brief
	Warning string
	// Gone: the entry no longer exists (purged, or replayed: then Href
	// is the job's page, what the replay produced).
	Gone bool
}

type actionData struct {
	Action     string // "replay" or "purge"
	P          deadletter.Params
	Selection  string // in words
	DryRun     bool
	Rows       []outcome
	OK, Failed int
	Truncated  bool
	Entries    string // id@generation, space-separated: what the confirm acts on
	Back       string
	Stopped    string // the operation stopped as a whole
	NoPublish  bool
	AskOlder   bool // purge by reason: older_than still to choose
}

// shown bounds the lines a preview or result lists; the counts cover all.
const shown = 500

func (d *actionData) add(o outcome) {
	if o.OK {
		d.OK++
	} else {
		d.Failed++
	}
	if len(d.Rows) < shown {
		switch {
		case o.Href != "":
		case d.DryRun || !o.OK:
			o.Href = entryHref(o.ID) // still parked
		case d.Action == "replay":
			o.Href, o.Gone = jobHref(o.ID), true // the job as replayed
		default:
			o.Gone = true // purged: nothing to link to
		}
		d.Rows = append(d.Rows, o)
	}
}

// selection says in words what the parameters select.
func selection(p deadletter.Params) string {
	if len(p.IDs) == 1 {
		return "entry " + p.IDs[0]
	}
	if len(p.IDs) > 1 {
		return plural(len(p.IDs), "selected entry")
	}
	var parts []string
	for _, kv := range [][2]string{{"reason", p.Reason}, {"code", p.Code}, {"phone number id", p.PhoneNumberID}, {"template", p.Template}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	s := "every entry with " + strings.Join(parts, ", ")
	if p.Since != "" {
		s += ", parked within the last " + p.Since
	}
	switch p.OlderThan {
	case "":
	case "0", "0s":
		s += ", of any age"
	default:
		s += ", parked at least " + p.OlderThan + " ago"
	}
	return s
}

// backTo is the list the operator came from: the page named by the back
// parameter (inside the console), else the filter's list.
func backTo(back string, p deadletter.Params) string {
	if back != "" {
		return safeNext(back)
	}
	return Prefix + "dlq?" + filterQuery(deadletter.Params{Reason: p.Reason, Code: p.Code, PhoneNumberID: p.PhoneNumberID, Template: p.Template, Since: p.Since})
}

func (c *Console) replayPreview(w http.ResponseWriter, r *http.Request, s session) {
	p, err := params(r.URL.Query(), "id", "as_template", "language", "back")
	d := actionData{Action: "replay", P: p, DryRun: true, Back: backTo(r.URL.Query().Get("back"), p), NoPublish: c.opts.Publisher == nil}
	var req deadletter.ReplayRequest
	if err == nil && len(p.IDs) == 0 && p.Reason == "" {
		err = nothingChosen
	}
	if err == nil {
		p.DryRun = true
		req, err = p.ReplayRequest()
	}
	if err != nil {
		c.actionRefused(w, r, s, d, err)
		return
	}
	d.Selection = selection(p)
	req.Concurrency = 1 // a dry run does no I/O per entry; keep the list's order
	var lines []string
	_, err = c.opts.Store.Replay(r.Context(), c.opts.Publisher, req, func(res deadletter.ReplayResult) error {
		if d.OK+d.Failed >= deadletter.MaxIDs {
			d.Truncated = true
			return errEnough
		}
		d.add(outcome{ID: res.ID, OK: res.Error == "", Generation: res.Generation, Error: res.Error, Brief: res.Brief, Warning: res.Warning})
		if res.Error == "" {
			lines = append(lines, res.ID+"@"+strconv.Itoa(res.Generation))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		c.storeFailed(w, r, s, "replay preview", err)
		return
	}
	d.Entries = strings.Join(lines, " ")
	c.render(w, http.StatusOK, "action", page{Title: "Replay", Nav: "dlq", CSRF: s.csrf, Data: d})
}

// actionRefused shows the action page with what is wrong with its
// parameters: 400.
func (c *Console) actionRefused(w http.ResponseWriter, r *http.Request, s session, d actionData, err error) {
	var pe *deadletter.ParamError
	if !errors.As(err, &pe) {
		c.storeFailed(w, r, s, d.Action, err)
		return
	}
	c.render(w, http.StatusBadRequest, "action", page{Title: "Replay", Nav: "dlq", CSRF: s.csrf, Error: pe.Error(), Data: d})
}

// confirmed reads the entries a confirm form acts on: id@generation,
// separated by spaces, as the preview wrote them (ids hold no spaces).
func confirmed(form string) (map[string]int, []string, error) {
	gens := map[string]int{}
	var ids []string
	for _, f := range strings.Fields(form) {
		id, g, ok := cutLast(f, "@")
		n, err := strconv.Atoi(g)
		if !ok || err != nil || n < 1 {
			return nil, nil, &deadletter.ParamError{Name: "entries", Problem: "want id@generation for each entry, as the preview wrote them"}
		}
		if err := queue.ValidateID(id); err != nil {
			return nil, nil, &deadletter.ParamError{Name: "entries", Problem: err.Error()}
		}
		if _, dup := gens[id]; !dup {
			ids = append(ids, id)
		}
		gens[id] = n
	}
	if len(ids) == 0 {
		return nil, nil, &deadletter.ParamError{Name: "entries", Problem: "no entries to act on; preview again"}
	}
	if len(ids) > deadletter.MaxIDs {
		return nil, nil, &deadletter.ParamError{Name: "entries", Problem: "more than " + strconv.Itoa(deadletter.MaxIDs)}
	}
	return gens, ids, nil
}

// unchanged keeps the ids still parked at the generation the preview
// showed, and reports the others. It reads the generations with
// deadletter's dry run by ids (pipelined loads, nothing changed).
func (c *Console) unchanged(r *http.Request, gens map[string]int, ids []string, d *actionData) ([]string, error) {
	now := map[string]int{}
	_, err := c.opts.Store.Replay(r.Context(), nil, deadletter.ReplayRequest{IDs: ids, DryRun: true, Concurrency: 1}, func(res deadletter.ReplayResult) error {
		now[res.ID] = res.Generation // 0: not parked
		return nil
	})
	if err != nil {
		return nil, err
	}
	var keep []string
	for _, id := range ids {
		switch g := now[id]; {
		case g == gens[id]:
			keep = append(keep, id)
		case g == 0:
			d.add(outcome{ID: id, Href: jobHref(id), Gone: true, Error: "no longer parked (replayed, purged or expired since the preview): left alone"})
		default:
			d.add(outcome{ID: id, Generation: g, Error: "parked again since the preview (now generation " + strconv.Itoa(g) + "): left alone; preview again"})
		}
	}
	return keep, nil
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, s session) {
	f := r.PostForm
	p := deadletter.Params{AsTemplate: f.Get("as_template"), Language: f.Get("language")}
	d := actionData{Action: "replay", Back: safeNext(f.Get("back"))}
	gens, ids, err := confirmed(f.Get("entries"))
	if err == nil {
		p.IDs = ids
		_, err = p.ReplayRequest() // check before anything is read
	}
	if err != nil {
		c.actionRefused(w, r, s, d, err)
		return
	}
	d.P, d.Selection = p, selection(p)
	if c.opts.Publisher == nil {
		c.fail(w, r, s, http.StatusServiceUnavailable, "Replay is not available here: this console has no connection to publish with. Nothing was changed.")
		return
	}
	keep, err := c.unchanged(r, gens, ids, &d)
	if err != nil {
		c.storeFailed(w, r, s, "replay", err)
		return
	}
	var tot deadletter.Totals
	if len(keep) > 0 {
		p.IDs = keep
		req, _ := p.ReplayRequest()
		tot, err = c.opts.Store.Replay(r.Context(), c.opts.Publisher, req, func(res deadletter.ReplayResult) error {
			d.add(outcome{ID: res.ID, OK: res.Replayed, Generation: res.Generation, Error: res.Error, Brief: res.Brief, Warning: res.Warning})
			return nil
		})
		if err != nil {
			d.Stopped = err.Error()
		}
	}
	c.opts.Logger.Info("console: dead-letter replay", audit(r, s), "ids", len(ids), "as_template", p.AsTemplate,
		"replayed", tot.Done, "failed", tot.Failed, "left_alone", len(ids)-len(keep), "error", d.Stopped)
	c.render(w, http.StatusOK, "action", page{Title: "Replayed", Nav: "dlq", CSRF: s.csrf, Data: d})
}

func (c *Console) purgePreview(w http.ResponseWriter, r *http.Request, s session) {
	p, err := params(r.URL.Query(), "id", "older_than", "back")
	d := actionData{Action: "purge", P: p, DryRun: true, Back: backTo(r.URL.Query().Get("back"), p)}
	if err == nil && len(p.IDs) == 0 && p.Reason != "" && p.OlderThan == "" && p.Since == "" {
		// The form, to choose how old; nothing to preview yet.
		d.AskOlder = true
		d.Selection = selection(p)
		c.render(w, http.StatusOK, "action", page{Title: "Purge", Nav: "dlq", CSRF: s.csrf, Data: d})
		return
	}
	var req deadletter.PurgeRequest
	if err == nil && len(p.IDs) == 0 && p.Reason == "" {
		err = nothingChosen
	}
	if err == nil {
		p.DryRun = true
		req, err = p.PurgeRequest()
	}
	if err != nil {
		c.actionRefused(w, r, s, d, err)
		return
	}
	d.Selection = selection(p)
	var ids []string
	_, err = c.opts.Store.Purge(r.Context(), req, func(res deadletter.PurgeResult) error {
		if d.OK+d.Failed >= deadletter.MaxIDs {
			d.Truncated = true
			return errEnough
		}
		d.add(outcome{ID: res.ID, OK: res.Error == "", Error: res.Error, Brief: res.Brief})
		if res.Error == "" {
			ids = append(ids, res.ID)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		c.storeFailed(w, r, s, "purge preview", err)
		return
	}
	// The confirm acts on these ids at their generation now.
	gens := map[string]int{}
	if len(ids) > 0 {
		if _, err := c.opts.Store.Replay(r.Context(), nil, deadletter.ReplayRequest{IDs: ids, DryRun: true, Concurrency: 1}, func(res deadletter.ReplayResult) error {
			gens[res.ID] = res.Generation
			return nil
		}); err != nil {
			c.storeFailed(w, r, s, "purge preview", err)
			return
		}
	}
	var lines []string
	for _, id := range ids {
		if g := gens[id]; g > 0 {
			lines = append(lines, id+"@"+strconv.Itoa(g))
		}
	}
	d.Entries = strings.Join(lines, " ")
	c.render(w, http.StatusOK, "action", page{Title: "Purge", Nav: "dlq", CSRF: s.csrf, Data: d})
}

func (c *Console) purge(w http.ResponseWriter, r *http.Request, s session) {
	d := actionData{Action: "purge", Back: safeNext(r.PostForm.Get("back"))}
	gens, ids, err := confirmed(r.PostForm.Get("entries"))
	if err != nil {
		c.actionRefused(w, r, s, d, err)
		return
	}
	p := deadletter.Params{IDs: ids}
	d.P, d.Selection = p, selection(p)
	keep, err := c.unchanged(r, gens, ids, &d)
	if err != nil {
		c.storeFailed(w, r, s, "purge", err)
		return
	}
	var tot deadletter.Totals
	if len(keep) > 0 {
		p.IDs = keep
		req, _ := p.PurgeRequest()
		tot, err = c.opts.Store.Purge(r.Context(), req, func(res deadletter.PurgeResult) error {
			d.add(outcome{ID: res.ID, OK: res.Purged, Error: res.Error, Brief: res.Brief})
			return nil
		})
		if err != nil {
			d.Stopped = err.Error()
		}
	}
	c.opts.Logger.Info("console: dead-letter purge", audit(r, s), "ids", len(ids),
		"purged", tot.Done, "failed", tot.Failed, "left_alone", len(ids)-len(keep), "error", d.Stopped)
	c.render(w, http.StatusOK, "action", page{Title: "Purged", Nav: "dlq", CSRF: s.csrf, Data: d})
}

// exportGroup is one group of a ticket as the page shows it: recipients
// masked, example bodies with the number masked.
type exportGroup struct {
	*deadletter.ExportGroup
	Title      string // the newest example's error title
	Recipients []string
	Examples   []exportExample
}

type exportExample struct {
	deadletter.ExportExample
	Body  string
	Error []field
	Href  string
}

type exportData struct {
	P                  deadletter.Params
	X                  *deadletter.Export
	Groups             []exportGroup
	TextHref, JSONHref string
}

func (c *Console) exportFilter(w http.ResponseWriter, r *http.Request, s session, extra ...string) (deadletter.Params, deadletter.Filter, bool) {
	p, err := params(r.URL.Query(), extra...)
	var f deadletter.Filter
	if err == nil {
		f, err = p.Filter()
	}
	if err != nil {
		c.storeFailed(w, r, s, "export", err)
		return p, f, false
	}
	return p, f, true
}

func (c *Console) exportPreview(w http.ResponseWriter, r *http.Request, s session) {
	p, f, ok := c.exportFilter(w, r, s)
	if !ok {
		return
	}
	x, err := c.opts.Store.Export(r.Context(), f)
	if err != nil {
		c.storeFailed(w, r, s, "export", err)
		return
	}
	d := exportData{P: p, X: x,
		TextHref: Prefix + "export/ticket?" + filterQuery(p, "format", "text"),
		JSONHref: Prefix + "export/ticket?" + filterQuery(p, "format", "json")}
	for _, g := range x.Groups {
		eg := exportGroup{ExportGroup: g}
		var known masker // every recipient of the group, for the texts
		for _, rc := range g.Recipients {
			eg.Recipients = append(eg.Recipients, mask(rc.Value)+" ("+strconv.Itoa(rc.Count)+")")
			known.to = append(known.to, newMasker(rc.Value).to...)
		}
		for _, ex := range g.Examples {
			m := masker{to: append([]string(nil), known.to...)}
			body := ""
			if len(ex.Body) > 0 {
				body = m.job(ex.Body)
			}
			var fields []field
			if le := ex.Error; le != nil {
				fields = []field{{"code", codeText(le.Code)}, {"title", m.text(le.Title)}, {"message", m.text(le.Message)}, {"error_data.details", m.text(le.Details)}, {"fbtrace_id", le.FBTraceID}}
			}
			if eg.Title == "" && ex.Error != nil {
				eg.Title = m.text(ex.Error.Title)
			}
			eg.Examples = append(eg.Examples, exportExample{ExportExample: ex, Body: body, Error: fields, Href: entryHref(ex.ID)})
		}
		d.Groups = append(d.Groups, eg)
	}
	c.render(w, http.StatusOK, "export", page{Title: "Support ticket", Nav: "dlq", CSRF: s.csrf, Data: d})
}

// exportTicket is the file `waq dlq export` writes, for the operator to
// attach to a ticket: recipients in full, since Meta support asks which.
func (c *Console) exportTicket(w http.ResponseWriter, r *http.Request, s session) {
	_, f, ok := c.exportFilter(w, r, s, "format")
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "text" && format != "json" {
		c.fail(w, r, s, http.StatusBadRequest, "format: want text or json")
		return
	}
	x, err := c.opts.Store.Export(r.Context(), f)
	if err != nil {
		c.storeFailed(w, r, s, "export", err)
		return
	}
	name := "waq-ticket-" + x.GeneratedAt.UTC().Format("20060102-150405")
	if format == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.txt"`)
		_ = x.WriteText(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(x)
}
