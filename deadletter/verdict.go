package deadletter

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/waqhq/waq/policy"
)

// verdict names the dimension that explains the failures: what is common
// to all of them, looked at in the order that points at a cause. One
// recipient is that person's phone; one reason that belongs to a
// dimension (template errors are the templates, undeliverable the
// recipients, account problems the account, a window, invalid or expired
// failure the code itself) is that dimension, however many numbers and
// templates are involved (206 template failures over three codes on one
// number are the templates, not the number); then one template, then one
// phone number among several; else it is broad. The advice is the row of
// the one code, or of the one reason, when they share one.
func verdict(st *Stats) (isolation, line string, advice *policy.Advice) {
	n := st.Total
	what := failureName(st)
	if len(st.ByReason) == 1 {
		reason := onlyKey(st.ByReason)
		a := policy.ReasonAdvice(reason)
		if len(st.ByCode) == 1 {
			if c, err := strconv.Atoi(onlyKey(st.ByCode)); err == nil {
				a = policy.AdviceFor(reason, c, true)
			}
		}
		advice = &a
	}
	switch {
	case n == 0:
		return "none", "no parked jobs", nil
	case n == 1:
		return "single", fmt.Sprintf("one failure (%s): nothing to compare it with", what), advice
	case st.Recipients == 1:
		return "recipient", fmt.Sprintf("all %d failures go to one recipient (%s): check that number, not the template or the sender", n, what), advice
	}
	reason := ""
	if len(st.ByReason) == 1 {
		reason = onlyKey(st.ByReason)
	}
	oneTemplate := len(st.ByTemplate) == 1 && st.FreeForm == 0
	switch reason {
	case policy.ReasonTemplate:
		if oneTemplate {
			return "template", fmt.Sprintf("all %d failures use template %s, across %s (%s): check that template", n, onlyKey(st.ByTemplate), plural(st.Recipients, "recipient"), what), advice
		}
		return "template", fmt.Sprintf("all %d failures are template errors (%s) across %s (%s) and %s: the templates, not the number or the recipients: check them in WhatsApp Manager",
			n, top(st.ByCode, 3), templates(st), top(st.ByTemplate, 3), plural(int64(len(st.ByPhoneNumber)), "phone number")), advice
	case policy.ReasonUndeliverable:
		return "recipient", fmt.Sprintf("all %d failures are recipients that cannot be reached (%s), %s: each recipient, not the template or the number", n, what, plural(st.Recipients, "recipient")), advice
	case policy.ReasonAccount:
		return "account", fmt.Sprintf("all %d failures are account problems (%s) on %s: the account, its token or its numbers, not the messages: fix it in WhatsApp Manager", n, what, plural(int64(len(st.ByPhoneNumber)), "phone number")), advice
	case policy.ReasonWindow, policy.ReasonInvalid, policy.ReasonExpired:
		a := policy.ReasonAdvice(reason)
		return "code", fmt.Sprintf("all %d failures are %s (%s: %s) across %s and %s", n, reason, what, a.Title, plural(st.Recipients, "recipient"), templates(st)), advice
	}
	switch {
	case oneTemplate:
		return "template", fmt.Sprintf("all %d failures use template %s, across %s (%s): check that template", n, onlyKey(st.ByTemplate), plural(st.Recipients, "recipient"), what), advice
	case len(st.ByPhoneNumber) == 1 && st.numbers > 1:
		// Failures of one number among several that have failures too is
		// worth a look at that number; a store of one number says nothing
		// about the number.
		return "phone_number", fmt.Sprintf("all %d failures come from phone number %s, across %s and %s (%s): check that number's status and quality", n, onlyKey(st.ByPhoneNumber), plural(st.Recipients, "recipient"), templates(st), what), advice
	}
	return "broad", fmt.Sprintf("%s on %d jobs across %s, %s and %s: broad", what, n, plural(st.Recipients, "recipient"), templates(st), plural(int64(len(st.ByPhoneNumber)), "phone number")), advice
}

// failureName names what failed: the one code, the one reason, or how many
// codes.
func failureName(st *Stats) string {
	if len(st.ByCode) == 1 {
		c := onlyKey(st.ByCode)
		if c == "none" {
			return "failures without an error code"
		}
		return c
	}
	if len(st.ByReason) == 1 {
		return fmt.Sprintf("%s (%d codes)", onlyKey(st.ByReason), len(st.ByCode))
	}
	return top(st.ByCode, 3)
}

// top lists the k most frequent values of m with their counts, "132001:
// 120, 132015: 60, ...".
func top(m map[string]int64, k int) string {
	keys := make([]string, 0, len(m))
	for v := range m {
		keys = append(keys, v)
	}
	sort.Slice(keys, func(a, b int) bool {
		return m[keys[a]] > m[keys[b]] || m[keys[a]] == m[keys[b]] && keys[a] < keys[b]
	})
	parts := make([]string, 0, k+1)
	for i, v := range keys {
		if i == k {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, v+": "+strconv.FormatInt(m[v], 10))
	}
	return strings.Join(parts, ", ")
}

func templates(st *Stats) string {
	s := plural(int64(len(st.ByTemplate)), "template")
	if st.FreeForm > 0 {
		s += fmt.Sprintf(" (and %d free-form)", st.FreeForm)
	}
	return s
}

func onlyKey(m map[string]int64) string {
	for k := range m {
		return k
	}
	return ""
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.FormatInt(n, 10) + " " + word + "s"
}
