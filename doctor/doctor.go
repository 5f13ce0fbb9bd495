// Package doctor runs Meta's 131000 troubleshooting guide as a program:
// does the Graph API answer, is the token valid with the right permissions,
// is the phone number connected and its quality not red, does the template
// exist, approved, in that language, is the recipient well formed, are
// recent failures isolated or broad; what the workers hold for Meta's
// account webhooks (templates paused, RED, numbers flagged, accounts
// restricted); and, beside the guide, are JetStream and
// Redis configured not to lose what they acknowledged (SPEC §2).
//
// Each check is one Result: ok, warn or fail, what was found, and what to do.
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/queue"
)

// Status is a check's verdict.
type Status string

// The verdicts.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check, as `waq doctor --json` prints it.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Hold is what a holds check found (holds.go); nil for the others.
	Hold *Hold `json:"hold,omitempty"`
}

// Options say what to check. Zero values skip what needs them.
type Options struct {
	Graph   *graph.Client
	Numbers *numbers.Registry
	// PhoneNumberID, WABAID, Template, Language and To are the optional
	// subjects of the guide's checks.
	PhoneNumberID, WABAID, Template, Language, To string
	// Store is the dead-letter store; Since bounds "recent" (default 24h).
	Store *deadletter.Store
	Since time.Duration
	// NATS and Stream are the job stream's connection and name.
	NATS   *nats.Conn
	Stream string
	// NATSMonitorURL is the server's monitoring endpoint (http://host:8222),
	// to read its sync setting; "" derives it from the connected server.
	NATSMonitorURL string
	Redis          redis.UniversalClient
	// KeyPrefix prefixes the workers' Redis keys (WAQ_KEY_PREFIX; "" is
	// "waq"): the holds are read under it.
	KeyPrefix string
	// LowQualityMarketing and HoldMax are the workers' WAQ_LOW_QUALITY_MARKETING
	// and WAQ_TEMPLATE_HOLD_MAX, to say what a hold does ("" is hold, 0
	// leaves the hold's end unsaid).
	LowQualityMarketing string
	HoldMax             time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// HTTP reads the NATS monitoring endpoint. Defaults to a 5s client.
	HTTP *http.Client
}

// Run runs every check whose subject is given, in the guide's order.
func Run(ctx context.Context, o Options) []Result {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Since == 0 {
		o.Since = 24 * time.Hour
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	var out []Result
	add := func(r ...Result) { out = append(out, r...) }

	num, numErr := o.number()
	if o.Graph != nil {
		tok, dt, graphRes := o.checkGraph(ctx, num, numErr)
		add(graphRes)
		if tok != "" && dt != nil {
			add(o.checkToken(dt))
		}
		if o.PhoneNumberID != "" && numErr == nil && graphRes.Status != Fail {
			add(o.checkNumber(ctx, num))
		}
		if o.Template != "" && graphRes.Status != Fail {
			add(o.checkTemplate(ctx, num))
		}
	}
	if o.To != "" {
		add(checkRecipient(o.To))
	}
	if o.Store != nil {
		add(o.checkDeadLetters(ctx))
	}
	if o.NATS != nil {
		add(o.checkJetStream(ctx)...)
	}
	if o.Redis != nil {
		add(o.checkRedis(ctx))
		add(o.checkHolds(ctx)...)
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	return slices.ContainsFunc(rs, func(r Result) bool { return r.Status == Fail })
}

// number is the phone number under test (with its token), or the default
// token's stand-in when none is named.
func (o Options) number() (numbers.Number, error) {
	if o.Numbers == nil {
		return numbers.Number{}, errors.New("no phone-number registry")
	}
	id := o.PhoneNumberID
	if id == "" {
		id = "0"
	}
	return o.Numbers.Lookup(id)
}

// debugToken is the answer of GET /debug_token.
type debugToken struct {
	Data tokenData `json:"data"`
}

type tokenData struct {
	IsValid   bool        `json:"is_valid"`
	Type      string      `json:"type"`
	AppID     string      `json:"app_id"`
	ExpiresAt int64       `json:"expires_at"`
	Scopes    []string    `json:"scopes"`
	Error     *tokenError `json:"error"`
}

type tokenError struct {
	Code    int    `json:"code"`
	Subcode int    `json:"subcode"`
	Message string `json:"message"`
}

// checkGraph asks Meta about the token (the first call of the guide), timing
// the answer.
func (o Options) checkGraph(ctx context.Context, num numbers.Number, numErr error) (string, *debugToken, Result) {
	r := Result{Check: "graph"}
	tok := num.Token()
	if numErr != nil || tok == "" {
		r.Status, r.Detail = Fail, "no access token to ask the Graph API with"
		if numErr != nil {
			r.Detail += ": " + numErr.Error()
		}
		r.Fix = "set WAQ_ACCESS_TOKEN, or the token variable the phone-number file names for this number"
		return "", nil, r
	}
	var dt debugToken
	start := time.Now()
	err := o.Graph.Get(ctx, "debug_token", url.Values{"input_token": {tok}}, tok, &dt)
	took := time.Since(start)
	where := o.Graph.Version() + " at " + o.Graph.BaseURL()
	var ae *graph.APIError
	switch {
	case errors.As(err, &ae):
		// Meta answered, if only to refuse: the API is up.
		r.Status, r.Detail = OK, fmt.Sprintf("Graph API %s answered in %d ms (with error %d)", where, took.Milliseconds(), ae.Code)
		if ae.Code == 190 || ae.HTTPStatus == 401 {
			// The token could not even ask: the token check says why.
			return tok, &debugToken{Data: tokenData{Error: &tokenError{Code: ae.Code, Subcode: ae.Subcode, Message: ae.Message}}}, r
		}
		return tok, nil, r
	case err != nil:
		r.Status, r.Detail = Fail, fmt.Sprintf("Graph API %s did not answer: %v", where, err)
		r.Fix = "check WAQ_GRAPH_URL, the network path to graph.facebook.com, and Meta's status page (metastatus.com)"
		return tok, nil, r
	}
	r.Status, r.Detail = OK, fmt.Sprintf("Graph API %s answered in %d ms", where, took.Milliseconds())
	if took > 3*time.Second {
		r.Status, r.Fix = Warn, "slow answers make timeouts (retried as transport failures); check the network path to Meta"
	}
	return tok, &dt, r
}

func (o Options) checkToken(dt *debugToken) Result {
	r := Result{Check: "token"}
	d := dt.Data
	if !d.IsValid {
		r.Status = Fail
		r.Detail = "the access token is not valid"
		if d.Error != nil {
			r.Detail += fmt.Sprintf(" (code %d", d.Error.Code)
			if d.Error.Subcode != 0 {
				r.Detail += fmt.Sprintf("/%d", d.Error.Subcode)
			}
			r.Detail += ": " + d.Error.Message + ")"
		}
		r.Fix = "create a System User access token in Business Manager with whatsapp_business_messaging and whatsapp_business_management, and set it where the worker reads it"
		return r
	}
	var missing []string
	for _, s := range []string{"whatsapp_business_messaging", "whatsapp_business_management"} {
		if !slices.Contains(d.Scopes, s) {
			missing = append(missing, s)
		}
	}
	if slices.Contains(missing, "whatsapp_business_messaging") {
		r.Status, r.Detail = Fail, "the token lacks "+strings.Join(missing, " and ")
		r.Fix = "grant the System User the missing permissions and generate a new token"
		return r
	}
	r.Status, r.Detail = OK, "the token is valid and has whatsapp_business_messaging and whatsapp_business_management"
	if len(missing) > 0 {
		r.Status, r.Detail = Warn, "the token is valid but lacks "+strings.Join(missing, " and ")+" (sending works; template and number checks may not)"
		r.Fix = "grant whatsapp_business_management to the System User"
	}
	if d.ExpiresAt > 0 {
		left := time.Unix(d.ExpiresAt, 0).Sub(o.Now())
		switch {
		case left < 7*24*time.Hour:
			r.Status = Warn
			r.Detail += fmt.Sprintf("; it expires in %s", left.Round(time.Hour))
			r.Fix = "use a System User token that does not expire; a short-lived token pauses sending when it expires (190)"
		default:
			r.Detail += "; it expires " + time.Unix(d.ExpiresAt, 0).UTC().Format("2006-01-02")
		}
	} else {
		r.Detail += "; it does not expire"
	}
	return r
}

// phoneNode is the phone number's fields.
type phoneNode struct {
	ID                 string `json:"id"`
	Status             string `json:"status"`
	QualityRating      string `json:"quality_rating"`
	VerifiedName       string `json:"verified_name"`
	DisplayPhoneNumber string `json:"display_phone_number"`
	NameStatus         string `json:"name_status"`
	Throughput         *struct {
		Level string `json:"level"`
	} `json:"throughput"`
}

func (o Options) checkNumber(ctx context.Context, num numbers.Number) Result {
	r := Result{Check: "phone_number"}
	var p phoneNode
	err := o.Graph.Get(ctx, url.PathEscape(num.PhoneNumberID),
		url.Values{"fields": {"status,quality_rating,verified_name,display_phone_number,name_status,throughput"}}, num.Token(), &p)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("phone number %s could not be read: %v", num.PhoneNumberID, err)
		r.Fix = "check the phone_number_id (Business Manager → WhatsApp Manager → Phone numbers) and that the token's System User has the WABA assigned"
		return r
	}
	name := strings.TrimSpace(p.DisplayPhoneNumber + " " + quoteIf(p.VerifiedName))
	r.Detail = fmt.Sprintf("%s (%s): status %s, quality %s", num.PhoneNumberID, name, orDash(p.Status), orDash(p.QualityRating))
	if p.Throughput != nil && p.Throughput.Level != "" {
		r.Detail += ", throughput " + p.Throughput.Level
	}
	r.Status = OK
	switch strings.ToUpper(p.Status) {
	case "CONNECTED", "":
	case "FLAGGED":
		r.Status, r.Fix = Warn, "the number is flagged for low quality: improve message quality before its messaging limit is lowered"
	default:
		r.Status, r.Fix = Fail, "the number cannot send in state "+p.Status+": resolve it in WhatsApp Manager (registration, display name, account restrictions)"
	}
	switch strings.ToUpper(p.QualityRating) {
	case "RED":
		r.Status, r.Fix = Fail, "quality rating is red: pause campaigns to this audience, check opt-ins and template content, or the number will be restricted"
	case "YELLOW":
		if r.Status == OK {
			r.Status, r.Fix = Warn, "quality rating is yellow: review recent templates and audience opt-in"
		}
	}
	return r
}

type templatesPage struct {
	Data []struct {
		Name     string `json:"name"`
		Language string `json:"language"`
		Status   string `json:"status"`
		Category string `json:"category"`
	} `json:"data"`
}

func (o Options) checkTemplate(ctx context.Context, num numbers.Number) Result {
	r := Result{Check: "template"}
	waba := o.WABAID
	if waba == "" {
		waba = num.WABAID
	}
	if waba == "" {
		r.Status, r.Detail = Fail, "no WABA id to look the template up in"
		r.Fix = "give --waba-id, or list the number with its waba_id in WAQ_PHONE_NUMBERS_FILE"
		return r
	}
	var page templatesPage
	err := o.Graph.Get(ctx, url.PathEscape(waba)+"/message_templates",
		url.Values{"name": {o.Template}, "limit": {"100"}, "fields": {"name,language,status,category"}}, num.Token(), &page)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("templates of WABA %s could not be read: %v", waba, err)
		r.Fix = "check the WABA id and that the token has whatsapp_business_management"
		return r
	}
	var langs []string
	for _, t := range page.Data {
		if t.Name != o.Template {
			continue
		}
		langs = append(langs, t.Language)
		if o.Language != "" && t.Language != o.Language {
			continue
		}
		r.Detail = fmt.Sprintf("template %q (%s, %s) is %s", t.Name, t.Language, strings.ToLower(t.Category), t.Status)
		switch strings.ToUpper(t.Status) {
		case "APPROVED":
			r.Status = OK
		case "PAUSED":
			r.Status, r.Fix = Fail, "the template is paused for low quality (132015): edit it or wait for Meta to unpause it; sends fail until then"
		case "DISABLED":
			r.Status, r.Fix = Fail, "the template is disabled (132016): create a new template"
		case "PENDING", "IN_APPEAL":
			r.Status, r.Fix = Warn, "the template is not approved yet: sends fail with 132001 until it is"
		default:
			r.Status, r.Fix = Fail, "the template cannot be sent in state "+t.Status+": fix it in WhatsApp Manager"
		}
		return r
	}
	r.Status = Fail
	if len(langs) > 0 {
		r.Detail = fmt.Sprintf("template %q exists in %s but not in %s", o.Template, strings.Join(langs, ", "), o.Language)
		r.Fix = "send with one of those language codes, or add the translation (132001 otherwise)"
		return r
	}
	r.Detail = fmt.Sprintf("template %q does not exist in WABA %s", o.Template, waba)
	r.Fix = "check the name (case matters) or create it; a missing template fails with 132001"
	return r
}

func checkRecipient(to string) Result {
	r := Result{Check: "recipient"}
	if err := queue.ValidateRecipient(to); err != nil {
		r.Status, r.Detail = Fail, strings.TrimPrefix(err.Error(), "invalid job: message.to: ")
		r.Fix = "write the number with its country code, digits only, like 15551234567"
		return r
	}
	r.Status, r.Detail = OK, to+" is digits with a country code"
	return r
}

func (o Options) checkDeadLetters(ctx context.Context) Result {
	r := Result{Check: "dead_letters"}
	f, err := deadletter.Params{Since: o.Since.String()}.Filter()
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	st, err := o.Store.Stats(ctx, f)
	if err != nil {
		r.Status, r.Detail = Fail, "dead-letter store unreadable: "+err.Error()
		r.Fix = "check WAQ_REDIS_URL"
		return r
	}
	since := o.Since.String()
	if st.Total == 0 {
		r.Status, r.Detail = OK, "no job parked in the last "+since
		return r
	}
	r.Status = Warn
	r.Detail = fmt.Sprintf("%d parked in the last %s: %s", st.Total, since, st.Verdict)
	// The verdict in the detail already says where the failures
	// concentrate ("... go to one recipient", "...: broad"); the fix says
	// what to do about it without repeating that.
	switch st.Isolation {
	case "code", "account":
		// What the failures share is their code or reason: its next step.
		if st.Advice != nil {
			r.Fix = st.Advice.Next
		}
	case "recipient":
		r.Fix = "check that recipient first: is it on WhatsApp, did it block the business?"
		if st.Recipients > 1 && st.Advice != nil {
			r.Fix = st.Advice.Next
		}
	case "template":
		r.Fix = "run waq doctor --template NAME --language CODE, and check the template's status in WhatsApp Manager"
		if len(st.ByTemplate) > 1 {
			r.Fix = "check each template in WhatsApp Manager › Message templates (status, languages, parameters); waq doctor --template NAME --language CODE checks one"
		}
	case "phone_number":
		r.Fix = "run waq doctor --phone-number-id P; check the number's status, quality and limits"
	default:
		r.Fix = "check the token and Meta's status page, then waq dlq export for a support ticket (fbtrace_id included)"
	}
	return r
}

// varz is the part of NATS's /varz doctor reads.
type varz struct {
	ServerName string `json:"server_name"`
	Cluster    *struct {
		Name string `json:"name"`
	} `json:"cluster"`
	JetStream *struct {
		Config *struct {
			SyncInterval int64 `json:"sync_interval"`
			SyncAlways   bool  `json:"sync_always"`
		} `json:"config"`
		Meta *struct {
			ClusterSize int `json:"cluster_size"`
		} `json:"meta"`
	} `json:"jetstream"`
}

func (o Options) checkJetStream(ctx context.Context) []Result {
	r := Result{Check: "jetstream"}
	js, err := jetstream.New(o.NATS)
	if err != nil {
		return []Result{{Check: "jetstream", Status: Fail, Detail: err.Error()}}
	}
	s, err := js.Stream(ctx, o.Stream)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("stream %s: %v", o.Stream, err)
		r.Fix = "start a worker once (it creates the stream), or check WAQ_NATS_URL and WAQ_STREAM"
		return []Result{r}
	}
	info, err := s.Info(ctx)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("stream %s: %v", o.Stream, err)
		return []Result{r}
	}
	replicas := info.Config.Replicas
	clustered := o.NATS.ConnectedClusterName() != "" || (info.Cluster != nil && len(info.Cluster.Replicas) > 0)
	r.Status = OK
	r.Detail = fmt.Sprintf("stream %s: %d replica(s), %s storage, %d jobs waiting", o.Stream, replicas, strings.ToLower(info.Config.Storage.String()), info.State.Msgs)
	if info.Config.Storage != jetstream.FileStorage {
		r.Status, r.Fix = Fail, "the stream keeps jobs in memory: a restart loses them; recreate it with file storage"
	}
	if clustered && replicas < 3 && r.Status == OK {
		r.Status, r.Fix = Warn, "in a cluster, set WAQ_STREAM_REPLICAS=3 so that losing one server loses no job"
	}
	out := []Result{r}

	sync := Result{Check: "jetstream_sync"}
	v, src, err := o.readVarz(ctx)
	switch {
	case err != nil:
		sync.Status, sync.Detail = Warn, "could not read the server's sync setting ("+err.Error()+")"
		sync.Fix = "check by hand that the NATS config has jetstream { sync_interval: always }, or give --nats-monitor-url"
	case v.JetStream == nil || v.JetStream.Config == nil:
		sync.Status, sync.Detail = Warn, src+" does not show a JetStream config"
		sync.Fix = "check by hand that the NATS config has jetstream { sync_interval: always }"
	case v.JetStream.Config.SyncAlways:
		sync.Status, sync.Detail = OK, "server "+v.ServerName+" syncs every write to disk (sync_interval: always)"
	default:
		every := time.Duration(v.JetStream.Config.SyncInterval)
		if every == 0 {
			every = 2 * time.Minute
		}
		sync.Status = Warn
		sync.Detail = fmt.Sprintf("server %s syncs to disk every %s: a power failure can lose acknowledged jobs (Jepsen, NATS 2.12, 2025)", v.ServerName, every)
		sync.Fix = "set jetstream { sync_interval: always } in every server's config (deploy/nats/)"
	}
	return append(out, sync)
}

func (o Options) readVarz(ctx context.Context) (varz, string, error) {
	u := o.NATSMonitorURL
	if u == "" {
		host := o.NATS.ConnectedAddr()
		if h, _, ok := strings.Cut(host, ":"); ok {
			host = h
		}
		if host == "" {
			return varz{}, "", errors.New("not connected")
		}
		u = "http://" + host + ":8222"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(u, "/")+"/varz", nil)
	if err != nil {
		return varz{}, u, err
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return varz{}, u, fmt.Errorf("no monitoring endpoint at %s", u)
	}
	defer resp.Body.Close()
	var v varz
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return varz{}, u, fmt.Errorf("%s/varz: %v", u, err)
	}
	return v, u, nil
}

func (o Options) checkRedis(ctx context.Context) Result {
	r := Result{Check: "redis"}
	aof, replicas, err := redisDurability(ctx, o.Redis)
	if err != nil {
		r.Status, r.Detail = Fail, "Redis does not answer: "+err.Error()
		r.Fix = "check WAQ_REDIS_URL"
		return r
	}
	r.Detail = fmt.Sprintf("AOF %s, %d replica(s)", onOff(aof), replicas)
	switch {
	case aof:
		r.Status = OK
	case replicas > 0:
		r.Status = OK
		r.Detail += " (no AOF: a failover keeps the data, a full restart does not)"
	default:
		r.Status = Warn
		r.Fix = "turn on appendonly yes (deploy/redis/redis.conf) or run a replica: a Redis restart would lose the sent records and the dead-letter store"
	}
	return r
}

// redisDurability reads AOF and replica counts (the least of every master
// in a cluster).
func redisDurability(ctx context.Context, rdb redis.UniversalClient) (aof bool, replicas int, err error) {
	read := func(c *redis.Client) (bool, int, error) {
		info, err := c.Info(ctx, "persistence", "replication").Result()
		if err != nil {
			return false, 0, err
		}
		return infoField(info, "aof_enabled") == "1", atoi(infoField(info, "connected_slaves")), nil
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		aof = true
		replicas = 1 << 30
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			a, n, err := read(c)
			aof = aof && a
			replicas = min(replicas, n)
			return err
		})
		return aof, replicas, err
	}
	if c, ok := rdb.(*redis.Client); ok {
		return read(c)
	}
	return false, 0, errors.New("unsupported redis client")
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func quoteIf(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(s)
}
