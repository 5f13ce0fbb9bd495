package main

// How waq dlq prints the results of an operation: table rows or JSON
// lines, and the totals.

import (
	"encoding/json"
	"fmt"

	"github.com/waqhq/waq/deadletter"
)

// resultWriter prints the result lines of replay and purge: JSON lines, or
// rows of a table printed at the end (the columns need every row).
type resultWriter struct {
	env     *Env
	json    *json.Encoder
	headers []string
	rows    [][]string
}

func newResultWriter(env *Env, asJSON bool, headers []string) *resultWriter {
	w := &resultWriter{env: env, headers: headers}
	if asJSON {
		w.json = json.NewEncoder(env.Stdout)
	}
	return w
}

func (w *resultWriter) write(v any, row []string) error {
	if w.json != nil {
		return w.json.Encode(v)
	}
	w.rows = append(w.rows, row)
	return nil
}

// finish prints the table and a summary, and gives the exit status: 1 when
// some entry failed or the operation stopped.
func (w *resultWriter) finish(tot deadletter.Totals, verb string, err error) error {
	if w.json == nil {
		if len(w.rows) > 0 {
			writeTable(w.env, w.headers, w.rows)
			fmt.Fprintln(w.env.Stdout)
		}
		fmt.Fprintf(w.env.Stdout, "%s %d, failed %d\n", verb, tot.Done, tot.Failed)
	}
	if err != nil {
		return err
	}
	if tot.Failed > 0 {
		if w.json != nil {
			fmt.Fprintf(w.env.Stderr, "waq dlq: %s %d, failed %d\n", verb, tot.Done, tot.Failed)
		}
		return &exitError{code: 1}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
