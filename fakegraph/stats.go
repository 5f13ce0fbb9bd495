package fakegraph

import (
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Outcomes of a send, as counted in Stats.ByOutcome and Send.Outcome: the
// answer kinds, with "error" for Meta's error bodies and "accepted" for
// successes (slow ones included).
const (
	OutcomeAccepted = "accepted"
	OutcomeError    = "error"
)

// Send is one request to the messages endpoint, as the sends log keeps it.
type Send struct {
	// Seq numbers the sends of the server from 1, resets included.
	Seq           int64     `json:"seq"`
	Time          time.Time `json:"time"`
	JobID         string    `json:"job_id"`
	PhoneNumberID string    `json:"phone_number_id"`
	// To is the recipient: its wa_id, or its business-scoped user ID.
	To       string `json:"to,omitempty"`
	Type     string `json:"type,omitempty"`
	Template string `json:"template,omitempty"`
	// API is the endpoint: "messages" or "marketing_messages".
	API string `json:"api,omitempty"`
	// MessageStatus is messages[].message_status of an accepted send.
	MessageStatus string `json:"message_status,omitempty"`
	// Outcome is "accepted", "error" or the kind of a non-Graph answer
	// ("html", "cut", "huge", "nocode", "raw", "hang", "drop").
	Outcome    string `json:"outcome"`
	Code       *int   `json:"code,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	WAMID      string `json:"wamid,omitempty"`
	FBTraceID  string `json:"fbtrace_id,omitempty"`
	// Rule names the rule or random failure that answered, if any.
	Rule string `json:"rule,omitempty"`
}

// Stats counts what the messages endpoint answered since the start or the
// last reset.
type Stats struct {
	// Requests counts every request to the messages endpoint.
	Requests int64 `json:"requests"`
	// Accepted counts success answers.
	Accepted int64 `json:"accepted"`
	// ByOutcome counts requests by Send.Outcome.
	ByOutcome map[string]int64 `json:"by_outcome"`
	// ByCode counts error answers by Graph API code.
	ByCode map[int]int64 `json:"by_code"`
	// ByHTTPStatus counts answers by HTTP status (0: none was written).
	ByHTTPStatus map[int]int64 `json:"by_http_status"`
	// Jobs counts the distinct job ids seen; AcceptedJobs those accepted at
	// least once.
	Jobs         int64 `json:"jobs"`
	AcceptedJobs int64 `json:"accepted_jobs"`
	// Duplicates counts the job ids accepted more than once;
	// DuplicateSends the acceptances beyond the first of each.
	Duplicates     int64 `json:"duplicates"`
	DuplicateSends int64 `json:"duplicate_sends"`
	// DuplicateJobs maps each duplicated job id to how often it was
	// accepted (at most 1000 of them).
	DuplicateJobs map[string]int64 `json:"duplicate_jobs"`
	// AcceptedPerJob maps every job id to how often it was accepted; only
	// filled when asked for (GET /_fake/stats?jobs=all).
	AcceptedPerJob map[string]int64 `json:"accepted_per_job,omitzero"`
	// ByPhoneNumber counts requests per business phone number.
	ByPhoneNumber map[string]PhoneStats `json:"by_phone_number"`
	// Rules says how often each rule answered and how many sends it has left.
	Rules []RuleStats `json:"rules"`
	// Webhooks counts status webhook deliveries.
	Webhooks WebhookStats `json:"webhooks"`
}

// PhoneStats counts the requests of one business phone number.
type PhoneStats struct {
	Requests int64 `json:"requests"`
	Accepted int64 `json:"accepted"`
	Failed   int64 `json:"failed"`
}

// RuleStats is one rule's count.
type RuleStats struct {
	Name    string `json:"name"`
	Matched int64  `json:"matched"`
	// Remaining is the sends the rule still answers; -1 for always.
	Remaining int64 `json:"remaining"`
}

// JobStats is what the simulator saw of one job id.
type JobStats struct {
	JobID    string `json:"job_id"`
	Sends    int64  `json:"sends"`
	Accepted int64  `json:"accepted"`
	// WAMIDs are the ids of its accepted sends, first ones first (at most 16).
	WAMIDs []string `json:"wamids"`
	// Outcomes are the outcomes of its sends in order (at most 32).
	Outcomes []string `json:"outcomes"`
}

const (
	jobShards      = 64
	maxJobWAMIDs   = 16
	maxJobOutcomes = 32
	maxDupReported = 1000
)

// outcomeNames index the per-outcome counters; "other" takes the rest.
var outcomeNames = [...]string{OutcomeAccepted, OutcomeError, "html", "cut", "huge", "nocode", "raw", "hang", "drop", "abandoned", "other"}

func outcomeIndex(o string) uint8 {
	for i, n := range outcomeNames {
		if n == o {
			return uint8(i)
		}
	}
	return uint8(len(outcomeNames) - 1)
}

// jobRecord is kept by value, without pointers but its strings, so that a
// million jobs cost the garbage collector little.
type jobRecord struct {
	sends, accepted int32
	nOut            uint8
	out             [maxJobOutcomes]uint8 // outcome indexes, first ones first
	wamid           string                // of the first acceptance
	more            []string              // of the later ones
}

type jobShard struct {
	mu sync.Mutex
	m  map[string]jobRecord
	_  [40]byte // keeps shards on separate cache lines
}

type phoneCounters struct {
	requests, accepted, failed atomic.Int64
}

// stats is the counters of the messages endpoint. The hot path touches only
// atomics, one of 64 job shards and the ring's mutex.
type stats struct {
	seed         maphash.Seed
	requests     atomic.Int64
	accepted     atomic.Int64
	jobs         atomic.Int64
	acceptedJobs atomic.Int64
	duplicates   atomic.Int64
	dupSends     atomic.Int64
	seq          atomic.Int64
	byOutcome    [len(outcomeNames)]atomic.Int64
	byKnownCode  map[int]*atomic.Int64 // the catalog's codes; never written after newStats
	byCode       sync.Map              // other codes: int → *atomic.Int64
	byStatus     [600]atomic.Int64
	byPhone      sync.Map // string → *phoneCounters
	shards       [jobShards]jobShard

	ringMu sync.Mutex
	ring   []Send
	next   int
	full   bool
}

func newStats(ringSize int) *stats {
	st := &stats{seed: maphash.MakeSeed(), ring: make([]Send, ringSize), byKnownCode: map[int]*atomic.Int64{}}
	for i := range st.shards {
		st.shards[i].m = make(map[string]jobRecord)
	}
	for c := range codes {
		st.byKnownCode[c] = new(atomic.Int64)
	}
	for c := 201; c <= 299; c++ {
		st.byKnownCode[c] = new(atomic.Int64)
	}
	return st
}

func counter(m *sync.Map, key any) *atomic.Int64 {
	if v, ok := m.Load(key); ok {
		return v.(*atomic.Int64)
	}
	v, _ := m.LoadOrStore(key, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// record counts one finished send and keeps it in the ring.
func (st *stats) record(s *Send) {
	s.Seq = st.seq.Add(1)
	st.requests.Add(1)
	accepted := s.Outcome == OutcomeAccepted
	if accepted {
		st.accepted.Add(1)
	}
	oi := outcomeIndex(s.Outcome)
	st.byOutcome[oi].Add(1)
	if s.Code != nil {
		if c := st.byKnownCode[*s.Code]; c != nil {
			c.Add(1)
		} else {
			counter(&st.byCode, *s.Code).Add(1)
		}
	}
	if s.HTTPStatus >= 0 && s.HTTPStatus < len(st.byStatus) {
		st.byStatus[s.HTTPStatus].Add(1)
	}
	pv, ok := st.byPhone.Load(s.PhoneNumberID)
	if !ok {
		pv, _ = st.byPhone.LoadOrStore(s.PhoneNumberID, new(phoneCounters))
	}
	pc := pv.(*phoneCounters)
	pc.requests.Add(1)
	if accepted {
		pc.accepted.Add(1)
	} else {
		pc.failed.Add(1)
	}

	sh := &st.shards[maphash.String(st.seed, s.JobID)%jobShards]
	sh.mu.Lock()
	jr, ok := sh.m[s.JobID]
	if !ok {
		st.jobs.Add(1)
	}
	jr.sends++
	if int(jr.nOut) < maxJobOutcomes {
		jr.out[jr.nOut] = oi
		jr.nOut++
	}
	if accepted {
		jr.accepted++
		switch {
		case jr.accepted == 1:
			jr.wamid = s.WAMID
		case len(jr.more) < maxJobWAMIDs-1:
			jr.more = append(jr.more, s.WAMID)
		}
		st.countAcceptance(jr.accepted)
	}
	sh.m[s.JobID] = jr
	sh.mu.Unlock()

	if len(st.ring) == 0 {
		return
	}
	st.ringMu.Lock()
	st.ring[st.next] = *s
	st.next++
	if st.next == len(st.ring) {
		st.next = 0
		st.full = true
	}
	st.ringMu.Unlock()
}

// acceptedJob counts one acceptance of a job in the lean mode: the job and
// duplicate counters only, without the outcomes, wamids and sends log that
// record keeps.
func (st *stats) acceptedJob(id string) {
	st.seq.Add(1)
	st.requests.Add(1)
	st.accepted.Add(1)
	st.byOutcome[0].Add(1) // OutcomeAccepted
	st.byStatus[200].Add(1)
	if id == "" {
		return
	}
	sh := &st.shards[maphash.String(st.seed, id)%jobShards]
	sh.mu.Lock()
	jr, ok := sh.m[id]
	jr.sends++
	jr.accepted++
	sh.m[id] = jr
	sh.mu.Unlock()
	if !ok {
		st.jobs.Add(1)
	}
	st.countAcceptance(jr.accepted)
}

// countAcceptance counts a job's n-th acceptance: the first makes it an
// accepted job, the second a duplicate, each later one a duplicate send.
func (st *stats) countAcceptance(n int32) {
	switch n {
	case 1:
		st.acceptedJobs.Add(1)
	case 2:
		st.duplicates.Add(1)
		st.dupSends.Add(1)
	default:
		st.dupSends.Add(1)
	}
}

// recent returns up to limit of the latest sends, oldest first.
func (st *stats) recent(limit int) []Send {
	st.ringMu.Lock()
	defer st.ringMu.Unlock()
	n := st.next
	if st.full {
		n = len(st.ring)
	}
	if limit <= 0 || limit > n {
		limit = n
	}
	out := make([]Send, 0, limit)
	start := st.next - limit
	for i := 0; i < limit; i++ {
		j := start + i
		if j < 0 {
			j += len(st.ring)
		}
		out = append(out, st.ring[j])
	}
	return out
}

func (st *stats) job(id string) (JobStats, bool) {
	sh := &st.shards[maphash.String(st.seed, id)%jobShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	jr, ok := sh.m[id]
	js := JobStats{JobID: id, Sends: int64(jr.sends), Accepted: int64(jr.accepted), WAMIDs: []string{}, Outcomes: []string{}}
	if jr.wamid != "" {
		js.WAMIDs = append(append(js.WAMIDs, jr.wamid), jr.more...)
	}
	for _, o := range jr.out[:jr.nOut] {
		js.Outcomes = append(js.Outcomes, outcomeNames[o])
	}
	return js, ok
}

func (st *stats) snapshot(allJobs bool) Stats {
	out := Stats{
		Requests:       st.requests.Load(),
		Accepted:       st.accepted.Load(),
		ByOutcome:      map[string]int64{},
		ByCode:         map[int]int64{},
		ByHTTPStatus:   map[int]int64{},
		Jobs:           st.jobs.Load(),
		AcceptedJobs:   st.acceptedJobs.Load(),
		Duplicates:     st.duplicates.Load(),
		DuplicateSends: st.dupSends.Load(),
		DuplicateJobs:  map[string]int64{},
		ByPhoneNumber:  map[string]PhoneStats{},
		Rules:          []RuleStats{},
	}
	for i := range st.byOutcome {
		if n := st.byOutcome[i].Load(); n > 0 {
			out.ByOutcome[outcomeNames[i]] = n
		}
	}
	for c, n := range st.byKnownCode {
		if v := n.Load(); v > 0 {
			out.ByCode[c] = v
		}
	}
	st.byCode.Range(func(k, v any) bool {
		out.ByCode[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	for i := range st.byStatus {
		if n := st.byStatus[i].Load(); n > 0 {
			out.ByHTTPStatus[i] = n
		}
	}
	st.byPhone.Range(func(k, v any) bool {
		pc := v.(*phoneCounters)
		out.ByPhoneNumber[k.(string)] = PhoneStats{Requests: pc.requests.Load(), Accepted: pc.accepted.Load(), Failed: pc.failed.Load()}
		return true
	})
	if allJobs {
		out.AcceptedPerJob = map[string]int64{}
	}
	var dups []string
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		for id, jr := range sh.m {
			if jr.accepted > 1 {
				dups = append(dups, id)
				if len(dups) <= maxDupReported {
					out.DuplicateJobs[id] = int64(jr.accepted)
				}
			}
			if allJobs {
				out.AcceptedPerJob[id] = int64(jr.accepted)
			}
		}
		sh.mu.Unlock()
	}
	if len(dups) > maxDupReported {
		// Keep a stable choice of which duplicates are listed.
		sort.Strings(dups)
		out.DuplicateJobs = map[string]int64{}
		for _, id := range dups[:maxDupReported] {
			out.DuplicateJobs[id] = 0
		}
		for i := range st.shards {
			sh := &st.shards[i]
			sh.mu.Lock()
			for id := range out.DuplicateJobs {
				if jr, ok := sh.m[id]; ok {
					out.DuplicateJobs[id] = int64(jr.accepted)
				}
			}
			sh.mu.Unlock()
		}
	}
	return out
}

// reset clears every counter and the ring; Seq keeps counting.
func (st *stats) reset() {
	st.requests.Store(0)
	st.accepted.Store(0)
	st.jobs.Store(0)
	st.acceptedJobs.Store(0)
	st.duplicates.Store(0)
	st.dupSends.Store(0)
	for i := range st.byOutcome {
		st.byOutcome[i].Store(0)
	}
	for _, n := range st.byKnownCode {
		n.Store(0)
	}
	st.byCode.Clear()
	for i := range st.byStatus {
		st.byStatus[i].Store(0)
	}
	st.byPhone.Clear()
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		sh.m = make(map[string]jobRecord)
		sh.mu.Unlock()
	}
	st.ringMu.Lock()
	clear(st.ring)
	st.next, st.full = 0, false
	st.ringMu.Unlock()
}
