package conn

import "strings"

// MatchPrefix returns a Redis MATCH pattern (SCAN, ZSCAN) for the strings
// that start with prefix, its glob characters escaped: a job id may hold
// '*', '?', '[' or '\'.
func MatchPrefix(prefix string) string {
	var b strings.Builder
	for _, r := range prefix {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + "*"
}
