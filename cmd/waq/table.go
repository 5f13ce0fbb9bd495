package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// termWidth is the width tables fit, or 0 for no limit: $COLUMNS when set,
// else the terminal's width when stdout is one; output to a pipe or a file
// is never cut.
func termWidth(env *Env) int {
	if n, err := strconv.Atoi(env.Getenv("COLUMNS")); err == nil && n >= 20 {
		return n
	}
	if f, ok := env.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w >= 20 {
			return w
		}
	}
	return 0
}

// uncut reports whether a column keeps its whole cells however narrow the
// terminal: an id is copied into the next command, so a cut one is useless.
func uncut(header string) bool {
	return header == "ID" || strings.HasSuffix(header, " ID")
}

// writeTable prints rows under headers, with columns as wide as their
// widest cell; when the line is wider than the terminal, the widest other
// columns shrink (cut with "…") until it fits, the id columns never. The
// last column is never padded.
func writeTable(env *Env, headers []string, rows [][]string) {
	const gap = 2
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	total := func() int {
		n := gap * (len(widths) - 1)
		for _, w := range widths {
			n += w
		}
		return n
	}
	limit := termWidth(env)
	for round := 0; limit > 0 && round < 10000 && total() > limit; round++ {
		widest := -1
		for i, w := range widths {
			if !uncut(headers[i]) && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 || widths[widest] <= 6 {
			break
		}
		widths[widest]--
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if !uncut(headers[i]) {
				c = truncate(c, widths[i])
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", max(widths[i]-utf8.RuneCountInString(c), 0)+gap))
			}
		}
		fmt.Fprintln(env.Stdout, strings.TrimRight(b.String(), " "))
	}
	line(headers)
	for _, r := range rows {
		line(r)
	}
}

// truncate cuts s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}
