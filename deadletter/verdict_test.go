package deadletter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
)

// The verdict names what is common to the failures: a dimension that
// points at a cause wins over one that merely happens to be shared.
func TestVerdictDimension(t *testing.T) {
	t.Parallel()
	templateCodes := []int{132001, 132015, 132000}
	tests := []struct {
		name      string
		specs     []spec
		filter    deadletter.Filter
		isolation string
		contains  []string
		advice    string // the advice row's key, "" for none
	}{{
		// The case of issue 22: 206 template failures, three codes, three
		// templates, all from one number while another number has
		// failures too. The number is common to them, but the cause is the
		// templates.
		name: "templates on one number",
		specs: append(many(206, func(i int) spec {
			return spec{reason: "template", code: templateCodes[i%3], pn: "300000000000003", to: fmt.Sprintf("1555000%04d", i), tpl: []string{"order_update", "reengage", "promo"}[i%3]}
		}), spec{id: "other", reason: "window", code: 131047, pn: "106540352242922"}),
		filter:    deadletter.Filter{Reason: "template"},
		isolation: "template",
		contains:  []string{"all 206 failures are template errors", "132001: 69, 132015: 69, 132000: 68", "3 templates", "the templates, not the number"},
		advice:    "reason:template",
	}, {
		name: "one template, mixed reasons",
		specs: many(12, func(i int) spec {
			if i%2 == 0 {
				return spec{reason: "retries_exhausted", code: 131000, to: fmt.Sprintf("1555000%04d", i), tpl: "order_update"}
			}
			return spec{reason: "template", code: 132001, to: fmt.Sprintf("1555000%04d", i), tpl: "order_update"}
		}),
		isolation: "template",
		contains:  []string{"all 12 failures use template order_update"},
	}, {
		name: "window across recipients",
		specs: many(30, func(i int) spec {
			return spec{reason: "window", code: 131047, to: fmt.Sprintf("1555000%04d", i), pn: []string{"106540352242922", "300000000000003"}[i%2]}
		}),
		isolation: "code",
		contains:  []string{"all 30 failures are window (131047", "30 recipients"},
		advice:    "131047",
	}, {
		name: "undeliverable recipients",
		specs: many(20, func(i int) spec {
			return spec{reason: "undeliverable", code: []int{131026, 131050}[i%2], to: fmt.Sprintf("1555000%04d", i), tpl: "promo"}
		}),
		isolation: "recipient",
		contains:  []string{"20 recipients", "cannot be reached"},
		advice:    "reason:undeliverable",
	}, {
		name: "account on two numbers",
		specs: many(8, func(i int) spec {
			return spec{reason: "account", code: 190, to: fmt.Sprintf("1555000%04d", i), pn: []string{"106540352242922", "300000000000003"}[i%2], tpl: []string{"a", "b"}[i%2]}
		}),
		isolation: "account",
		contains:  []string{"account problems (190) on 2 phone numbers"},
		advice:    "190",
	}, {
		// Mixed reasons and templates, all from one number of two: the
		// number is what they share. The other number's failure is older
		// than --since, so it is not in the selection but counts as a
		// number with failures.
		name: "mixed on one number",
		specs: append(many(9, func(i int) spec {
			return spec{reason: []string{"window", "retries_exhausted", "template"}[i%3], code: []int{131047, 131000, 132001}[i%3],
				to: fmt.Sprintf("1555000%04d", i), pn: "300000000000003", tpl: []string{"", "a", "b"}[i%3]}
		}), spec{id: "other", reason: "window", code: 131047, pn: "106540352242922", at: t0.Add(-70 * time.Hour)}),
		filter:    deadletter.Filter{Since: time.Hour},
		isolation: "phone_number",
		contains:  []string{"all 9 failures come from phone number 300000000000003"},
	}, {
		name: "mixed everywhere",
		specs: many(12, func(i int) spec {
			return spec{reason: []string{"window", "retries_exhausted", "template"}[i%3], code: []int{131047, 131000, 132001}[i%3],
				to: fmt.Sprintf("1555000%04d", i), pn: []string{"106540352242922", "300000000000003"}[i%2], tpl: []string{"", "a", "b"}[i%3]}
		}),
		isolation: "broad",
		contains:  []string{"131000: 4, 131047: 4, 132001: 4 on 12 jobs", "2 phone numbers: broad"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.park(t, tt.specs...)
			st, err := f.store.Stats(context.Background(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if st.Isolation != tt.isolation {
				t.Errorf("isolation %q, want %q (verdict %q)", st.Isolation, tt.isolation, st.Verdict)
			}
			for _, c := range tt.contains {
				if !strings.Contains(st.Verdict, c) {
					t.Errorf("verdict %q, want it to say %q", st.Verdict, c)
				}
			}
			switch {
			case tt.advice == "" && st.Advice != nil:
				t.Errorf("advice %s for failures with nothing in common", st.Advice.Key)
			case tt.advice != "" && (st.Advice == nil || st.Advice.Key != tt.advice):
				t.Errorf("advice %+v, want row %s", st.Advice, tt.advice)
			}
		})
	}
}

func many(n int, fn func(i int) spec) []spec {
	out := make([]spec, n)
	for i := range out {
		out[i] = fn(i)
		out[i].id = fmt.Sprintf("j%d", i)
	}
	return out
}
