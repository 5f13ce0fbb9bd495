package admin

import (
	"net/http"
	"strconv"

	"github.com/waqhq/waq/fleet"
)

// overviewAnswer is GET /admin/overview: the fleet's view (package fleet)
// and the sums the console's overview shows.
type overviewAnswer struct {
	fleet.View
	// Attempts is total.sent + total.failed: rate-limit answers are not
	// among them (total.rate_limited).
	Attempts int64 `json:"attempts"`
	// ThrottledTotal is the jobs held back, every scope.
	ThrottledTotal int64 `json:"throttled_total"`
	// ParkedTotal is the jobs parked, every reason.
	ParkedTotal int64 `json:"parked_total"`
	// Waiting is ack_pending less what the workers hold: jobs waiting in
	// JetStream for a retry or a redelivery.
	Waiting int64 `json:"waiting"`
}

// overview answers the fleet's counts over the last ?minutes=N (1 to 120;
// 60 when left out), the minute in progress included.
func (s *server) overview(w http.ResponseWriter, r *http.Request) {
	n := 60
	for k, vs := range r.URL.Query() {
		if k != "minutes" {
			writeError(w, http.StatusBadRequest, "unknown parameter "+strconv.Quote(k)+": the overview takes minutes")
			return
		}
		v, err := strconv.Atoi(vs[0])
		if err != nil || len(vs) != 1 || v < 1 || v > fleet.MaxMinutes {
			writeError(w, http.StatusBadRequest, "minutes: want one whole number from 1 to "+strconv.Itoa(fleet.MaxMinutes))
			return
		}
		n = v
	}
	if s.opts.Fleet == nil {
		writeError(w, http.StatusServiceUnavailable, "overview: this worker reads no fleet counts")
		return
	}
	v, err := s.opts.Fleet.Read(r.Context(), n)
	if err != nil {
		s.fail(w, "overview", err)
		return
	}
	writeJSON(w, http.StatusOK, overviewAnswer{View: v, Attempts: v.Total.Attempts(), ThrottledTotal: v.Total.ThrottledTotal(),
		ParkedTotal: v.Total.ParkedTotal(), Waiting: v.Waiting()})
}
