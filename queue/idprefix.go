package queue

import (
	"fmt"
	"strings"
)

// MaxCandidates is how many ids an AmbiguousIDError lists at most.
const MaxCandidates = 10

// AmbiguousIDError is a shortened job id that more than one job's id
// starts with: the commands that take an id (waq dlq show, replay, purge,
// waq job show) take a unique prefix, as git does.
type AmbiguousIDError struct {
	Prefix     string
	Candidates []string // at most MaxCandidates, sorted
	More       bool     // more ids than Candidates start with Prefix
}

func (e *AmbiguousIDError) Error() string {
	more := ""
	if e.More {
		more = ", ..."
	}
	return fmt.Sprintf("%q is the start of %d or more job ids (%s%s): give more of the id", e.Prefix, len(e.Candidates), strings.Join(e.Candidates, ", "), more)
}
