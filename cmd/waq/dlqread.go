package main

// waq dlq list, show, stats and export: what the store holds.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/queue"
)

func dlqList(ctx context.Context, env *Env, c *dlqCmd) error {
	f, cursor, limit, err := c.p.ListArgs()
	if err != nil {
		return paramUsage(err)
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	page, err := store.List(ctx, f, cursor, limit)
	if err != nil {
		return paramUsage(err)
	}
	if c.json {
		enc := json.NewEncoder(env.Stdout)
		for _, e := range page.Entries {
			if err := enc.Encode(e.Summary()); err != nil {
				return err
			}
		}
		if page.Next != "" {
			fmt.Fprintf(env.Stderr, "more: --cursor %s\n", page.Next)
		}
		return nil
	}
	if len(page.Entries) == 0 {
		fmt.Fprintln(env.Stdout, "no parked jobs match")
		return nil
	}
	rows := make([][]string, len(page.Entries))
	for i, e := range page.Entries {
		s := e.Summary()
		code := "-"
		if s.Code != nil {
			code = strconv.Itoa(*s.Code)
		}
		rows[i] = []string{s.ID, s.Reason, code, s.PhoneNumberID, dash(e.Addressee()), dash(s.Template), strconv.Itoa(s.Attempts), s.ParkedAt.Format("2006-01-02 15:04:05"), dash(s.FBTraceID)}
	}
	// TO holds a number or, for a job addressed by one, a business-scoped
	// user ID (US.…), which tells itself apart.
	writeTable(env, []string{"ID", "REASON", "CODE", "PHONE NUMBER", "TO", "TEMPLATE", "SENDS", "PARKED (UTC)", "FBTRACE_ID"}, rows)
	if page.Next != "" {
		fmt.Fprintf(env.Stdout, "\nmore: add --cursor %s\n", page.Next)
	}
	return nil
}

func dlqShow(ctx context.Context, env *Env, c *dlqCmd) error {
	if err := queue.ValidateID(c.args[0]); err != nil {
		return usagef("%q is not a job id", c.args[0])
	}
	store, done, err := openStore(ctx, env, c)
	if err != nil {
		return err
	}
	defer done()
	id, err := store.ResolveID(ctx, c.args[0])
	if err != nil {
		if errors.Is(err, deadletter.ErrNotFound) {
			return fmt.Errorf("%s: %w", c.args[0], err)
		}
		return err
	}
	e, err := store.Show(ctx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	if c.json {
		return json.NewEncoder(env.Stdout).Encode(e)
	}
	w := env.Stdout
	s := e.Summary()
	fmt.Fprintf(w, "id:               %s\nreason:           %s\n", e.ID, e.Reason)
	if e.Problem != "" {
		fmt.Fprintf(w, "problem:          %s\n", e.Problem)
	}
	fmt.Fprintf(w, "parked at:        %s (generation %d)\n", e.ParkedAt.UTC().Format(time.RFC3339), e.Replayed)
	fmt.Fprintf(w, "phone number id:  %s\n", dash(e.PhoneNumberID))
	if e.Recipient != "" && e.To == "" {
		fmt.Fprintf(w, "recipient:        %s (business-scoped user ID)\n", e.Recipient)
	} else {
		fmt.Fprintf(w, "to:               %s\n", dash(e.To))
	}
	fmt.Fprintf(w, "type:             %s\n", dash(e.MessageType))
	if e.Template != "" {
		fmt.Fprintf(w, "template:         %s (%s)\n", e.Template, e.Language)
	}
	fmt.Fprintf(w, "trace id:         %s\nsends:            %d\n", dash(e.TraceID), s.Attempts)
	if len(e.Metadata) > 0 {
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "metadata:         %s=%s\n", k, e.Metadata[k])
		}
	}
	if e.LastError != nil {
		b, _ := json.MarshalIndent(map[string]any{"error": e.LastError}, "  ", "  ")
		fmt.Fprintf(w, "\nlast error:\n  %s\n", b)
	}
	if len(e.Job) > 0 {
		var v any
		if json.Unmarshal(e.Job, &v) == nil {
			b, _ := json.MarshalIndent(v, "  ", "  ")
			fmt.Fprintf(w, "\njob:\n  %s\n", b)
		}
	} else if len(e.Raw) > 0 {
		fmt.Fprintf(w, "\nbody (not JSON, %d bytes): %q\n", len(e.Raw), truncate(string(e.Raw), 200))
	}
	if len(e.Attempts) > 0 {
		fmt.Fprintln(w, "\nattempts:")
		rows := make([][]string, len(e.Attempts))
		for i, a := range e.Attempts {
			code := dash(a.Error)
			if a.Code != nil {
				code = strconv.Itoa(*a.Code)
			}
			rows[i] = []string{a.At.UTC().Format("2006-01-02 15:04:05"), strconv.Itoa(a.Gen), a.Outcome, dash(a.Action), code, dash(a.FBTraceID)}
		}
		writeTable(env, []string{"AT (UTC)", "GEN", "OUTCOME", "ACTION", "CODE", "FBTRACE_ID"}, rows)
	}
	return nil
}

func dlqStats(ctx context.Context, env *Env, c *dlqCmd) error {
	f, store, done, err := openFor(ctx, env, c, c.p.Filter)
	if err != nil {
		return err
	}
	defer done()
	st, err := store.Stats(ctx, f)
	if err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(env.Stdout).Encode(st)
	}
	w := env.Stdout
	fmt.Fprintf(w, "%s\n\n", st.Verdict)
	if st.Total == 0 {
		return nil
	}
	fmt.Fprintf(w, "%d parked jobs to %d recipients", st.Total, st.Recipients)
	if st.Oldest != nil {
		fmt.Fprintf(w, ", parked %s to %s", st.Oldest.Format(time.RFC3339), st.Newest.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tpl := st.ByTemplate
	if st.FreeForm > 0 {
		tpl = map[string]int64{"(free-form)": st.FreeForm}
		for k, v := range st.ByTemplate {
			tpl[k] = v
		}
	}
	for _, sec := range []struct {
		title string
		m     map[string]int64
	}{{"REASON", st.ByReason}, {"CODE", st.ByCode}, {"PHONE NUMBER", st.ByPhoneNumber}, {"TEMPLATE", tpl}} {
		fmt.Fprintln(w)
		writeTable(env, []string{sec.title, "JOBS", "SHARE"}, topRows(sec.m, st.Total, 15))
	}
	return nil
}

// topRows sorts counts, largest first, cut at max with a line for the rest.
func topRows(m map[string]int64, total int64, max int) [][]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return m[keys[a]] > m[keys[b]] || m[keys[a]] == m[keys[b]] && keys[a] < keys[b] })
	var rows [][]string
	var rest int64
	for i, k := range keys {
		if i >= max {
			rest += m[k]
			continue
		}
		rows = append(rows, []string{k, strconv.FormatInt(m[k], 10), share(m[k], total)})
	}
	if rest > 0 {
		rows = append(rows, []string{fmt.Sprintf("(%d more)", len(keys)-max), strconv.FormatInt(rest, 10), share(rest, total)})
	}
	return rows
}

func share(n, total int64) string {
	if total == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 1, 64) + "%"
}

func dlqExport(ctx context.Context, env *Env, c *dlqCmd) error {
	f, store, done, err := openFor(ctx, env, c, c.p.Filter)
	if err != nil {
		return err
	}
	defer done()
	x, err := store.Export(ctx, f)
	if err != nil {
		return err
	}
	if c.json || c.format == "json" {
		return json.NewEncoder(env.Stdout).Encode(x)
	}
	return x.WriteText(env.Stdout)
}
