package deadletter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
)

func TestStats(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	mixed(t, f)
	st, err := f.store.Stats(ctx, deadletter.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 7 || st.ByReason["window"] != 3 || st.ByReason["template"] != 2 || st.ByCode["131047"] != 3 || st.ByCode["none"] != 1 ||
		st.ByPhoneNumber["106540352242922"] != 6 || st.ByPhoneNumber["200000000000001"] != 1 || st.ByTemplate["order_update"] != 3 ||
		st.FreeForm != 3 || st.Recipients != 6 || st.Isolation != "broad" || st.Oldest == nil || !st.Newest.Equal(t0.Add(-time.Hour)) {
		t.Errorf("stats = %+v", st)
	}
	if !strings.HasSuffix(st.Verdict, ": broad") || !strings.Contains(st.Verdict, "7 jobs across 6 recipients") {
		t.Errorf("verdict %q", st.Verdict)
	}
	// Counters (one filter) and a scan (two) agree.
	for _, flt := range []deadletter.Filter{{Reason: "window"}, {Template: "order_update"}, {Code: ptr(131047)}, {PhoneNumberID: "106540352242922"}} {
		counted, err := f.store.Stats(ctx, flt)
		if err != nil {
			t.Fatal(err)
		}
		// A --since inside the retention that selects everything forces a scan.
		again, err := f.store.Stats(ctx, deadletter.Filter{Reason: flt.Reason, Code: flt.Code, Template: flt.Template, PhoneNumberID: flt.PhoneNumberID, Since: 71 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(counted.ByReason, counted.ByCode, counted.ByPhoneNumber, counted.ByTemplate, counted.Total, counted.Recipients, counted.Verdict) !=
			fmt.Sprint(again.ByReason, again.ByCode, again.ByPhoneNumber, again.ByTemplate, again.Total, again.Recipients, again.Verdict) {
			t.Errorf("%+v: counters %+v, scan %+v", flt, counted, again)
		}
	}
}

func TestStatsVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		specs     func(i int) spec
		n         int
		isolation string
		contains  string
		flt       deadletter.Filter // filtered stats: the verdict is about what the filter selects
		absent    string
	}{
		{"one recipient", func(i int) spec {
			return spec{reason: "undeliverable", code: 131026, to: "15559990000", tpl: []string{"a", "b"}[i%2]}
		}, 9, "recipient", "all 9 failures go to one recipient", deadletter.Filter{}, ""},
		{"one template", func(i int) spec {
			return spec{reason: "template", code: 132001, to: fmt.Sprintf("1555000%04d", i), tpl: "order_update"}
		}, 5, "template", "all 5 failures use template order_update", deadletter.Filter{}, ""},
		{"one number of several", func(i int) spec {
			s := spec{reason: "retries_exhausted", code: 131000, to: fmt.Sprintf("1555000%04d", i), pn: "300000000000003"}
			if i == 0 {
				s.code, s.reason, s.pn = 131047, "window", "106540352242922"
			}
			return s
		}, 6, "phone_number", "come from phone number 300000000000003", deadletter.Filter{Code: ptr(131000)}, ""},
		// 131047 from one number of several: the advice is the window's
		// (a template), not the number's quality.
		{"window failures of one number", func(i int) spec {
			s := spec{reason: "window", code: 131047, to: fmt.Sprintf("1555000%04d", i), pn: "300000000000003", tpl: []string{"", "a"}[i%2]}
			if i == 0 {
				s.code, s.reason, s.pn = 131000, "retries_exhausted", "106540352242922"
			}
			return s
		}, 6, "code", "outside the 24-hour customer service window", deadletter.Filter{Code: ptr(131047)}, "quality"},
		{"broad", func(i int) spec {
			return spec{reason: "retries_exhausted", code: 131000, to: fmt.Sprintf("1555000%04d", i%37), tpl: []string{"a", "b"}[i%2]}
		}, 412, "broad", "131000 on 412 jobs across 37 recipients, 2 templates and 1 phone number: broad", deadletter.Filter{}, ""},
		{"single", func(i int) spec { return spec{reason: "window", code: 131047} }, 1, "single", "one failure (131047)", deadletter.Filter{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			for i := 0; i < tt.n; i++ {
				sp := tt.specs(i)
				sp.id = fmt.Sprintf("j%d", i)
				f.park(t, sp)
			}
			st, err := f.store.Stats(context.Background(), tt.flt)
			if err != nil {
				t.Fatal(err)
			}
			if st.Isolation != tt.isolation || !strings.Contains(st.Verdict, tt.contains) || tt.absent != "" && strings.Contains(st.Verdict, tt.absent) {
				t.Errorf("isolation %q, verdict %q; want %q containing %q", st.Isolation, st.Verdict, tt.isolation, tt.contains)
			}
		})
	}
	f := setup(t)
	st, err := f.store.Stats(context.Background(), deadletter.Filter{})
	if err != nil || st.Total != 0 || st.Isolation != "none" {
		t.Errorf("empty store: %+v, %v", st, err)
	}
}

// TestStatsUserIDs: entries addressed by business-scoped user ID are
// counted apart from those addressed by number, the same by the counters
// (with an entry past the retention taken off, and one replaced by a
// number) and by a scan.
func TestStatsUserIDs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.park(t,
		spec{id: "u1", reason: "invalid", code: 131062, bsuid: "US.13491208655302741918", tpl: "otp"},
		spec{id: "u2", reason: "invalid", code: 131062, bsuid: "US.ENT.99887766554433221100", tpl: "otp"},
		spec{id: "u3", reason: "undeliverable", code: 131026, bsuid: "BR.5550001"},
		spec{id: "u-old", reason: "invalid", code: 131062, bsuid: "US.1", at: t0.Add(-80 * time.Hour)},
		spec{id: "u-replaced", reason: "invalid", code: 131062, bsuid: "US.2"},
		spec{id: "p1", reason: "invalid", code: 131030, to: "15550000001"},
		spec{id: "p2", reason: "invalid", code: 131030, to: "15550000002"},
		spec{id: "p3", reason: "window", code: 131047, to: "15550000003"},
	)
	// Parked again, addressed by number: it leaves the user-ID count.
	f.park(t, spec{id: "u-replaced", reason: "invalid", code: 131062, to: "15550000004"})

	for _, tt := range []struct {
		flt  deadletter.Filter
		want int64
	}{
		{deadletter.Filter{}, 3},
		{deadletter.Filter{Since: 71 * time.Hour}, 3},
		{deadletter.Filter{Code: ptr(131062)}, 2},
		{deadletter.Filter{Code: ptr(131062), Since: 71 * time.Hour}, 2},
		{deadletter.Filter{Code: ptr(131030)}, 0},
		{deadletter.Filter{Reason: "undeliverable"}, 1},
		{deadletter.Filter{Recipient: "US.13491208655302741918"}, 1},
	} {
		st, err := f.store.Stats(ctx, tt.flt)
		if err != nil {
			t.Fatal(err)
		}
		if st.UserIDEntries != tt.want {
			t.Errorf("%+v: %d addressed by user ID of %d; want %d", tt.flt, st.UserIDEntries, st.Total, tt.want)
		}
	}
	// Removed, they leave the count; the one past the retention, still in
	// the counters until the sweep, is taken off.
	for _, id := range []string{"u1", "u2", "u3"} {
		if _, err := f.store.Remove(ctx, id, -1); err != nil {
			t.Fatal(err)
		}
	}
	st, err := f.store.Stats(ctx, deadletter.Filter{})
	if err != nil || st.Total != 4 || st.UserIDEntries != 0 {
		t.Errorf("after the user-ID entries went: %+v, %v", st, err)
	}
}
