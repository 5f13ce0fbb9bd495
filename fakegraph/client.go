package fakegraph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Control is a client of a simulator's control API, for tests and tools
// that run it in another process.
type Control struct {
	// BaseURL is the simulator's URL, e.g. "http://127.0.0.1:8090".
	BaseURL string
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
}

// Stats returns the simulator's counters; allJobs adds every job's count.
func (c *Control) Stats(ctx context.Context, allJobs bool) (*Stats, error) {
	var st Stats
	path := "/_fake/stats"
	if allJobs {
		path += "?jobs=all"
	}
	return &st, c.do(ctx, http.MethodGet, path, nil, &st)
}

// Sends returns up to limit of the latest sends (all kept for limit <= 0),
// oldest first.
func (c *Control) Sends(ctx context.Context, limit int) ([]Send, error) {
	var out struct {
		Sends []Send `json:"sends"`
	}
	err := c.do(ctx, http.MethodGet, "/_fake/sends?limit="+strconv.Itoa(limit), nil, &out)
	return out.Sends, err
}

// Job returns what the simulator saw of one job id (zero counts when it saw
// none).
func (c *Control) Job(ctx context.Context, id string) (*JobStats, error) {
	var js JobStats
	err := c.do(ctx, http.MethodGet, "/_fake/jobs/"+url.PathEscape(id), nil, &js)
	if err != nil && js.JobID == id {
		return &js, nil // 404: never seen
	}
	return &js, err
}

// AddRules appends scripted rules and returns their names.
func (c *Control) AddRules(ctx context.Context, rules ...Rule) ([]string, error) {
	var out struct {
		Added []string `json:"added"`
	}
	err := c.do(ctx, http.MethodPost, "/_fake/rules", map[string]any{"rules": rules}, &out)
	return out.Added, err
}

// ClearRules removes every rule.
func (c *Control) ClearRules(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/_fake/rules", nil, nil)
}

// Scenario returns the scenario in force.
func (c *Control) Scenario(ctx context.Context) (*Scenario, error) {
	var sc Scenario
	return &sc, c.do(ctx, http.MethodGet, "/_fake/scenario", nil, &sc)
}

// SetScenario replaces the scenario.
func (c *Control) SetScenario(ctx context.Context, sc *Scenario) error {
	return c.do(ctx, http.MethodPut, "/_fake/scenario", sc, nil)
}

// Reset clears counters, logs and changes, and restores the initial scenario.
func (c *Control) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_fake/reset", nil, nil)
}

// SetToken makes a token known, expiring, revoked or valid again.
func (c *Control) SetToken(ctx context.Context, u TokenUpdate) error {
	return c.do(ctx, http.MethodPost, "/_fake/tokens", u, nil)
}

// Inbound simulates a customer's message, opening their 24-hour window.
func (c *Control) Inbound(ctx context.Context, phoneNumberID, from, text string) error {
	return c.do(ctx, http.MethodPost, "/_fake/inbound",
		map[string]string{"phone_number_id": phoneNumberID, "from": from, "text": text}, nil)
}

// SetThroughput changes a phone number's throughput level and enforced rate
// (Meta's automatic upgrade, or back).
func (c *Control) SetThroughput(ctx context.Context, phoneNumberID string, u ThroughputUpdate) error {
	return c.do(ctx, http.MethodPost, "/_fake/numbers/"+url.PathEscape(phoneNumberID)+"/throughput", u, nil)
}

// UpdateTemplate changes a template's status or quality and sends the
// account webhook Meta would (see Server.UpdateTemplate).
func (c *Control) UpdateTemplate(ctx context.Context, name, lang string, u TemplateUpdate) error {
	return c.do(ctx, http.MethodPost, "/_fake/templates/"+url.PathEscape(name)+"/"+url.PathEscape(lang), u, nil)
}

// UpdateNumber sends a phone_number_quality_update (see Server.UpdateNumber).
func (c *Control) UpdateNumber(ctx context.Context, phoneNumberID string, u NumberUpdate) error {
	return c.do(ctx, http.MethodPost, "/_fake/numbers/"+url.PathEscape(phoneNumberID)+"/quality", u, nil)
}

// UpdateAccount sends an account_update (see Server.UpdateAccount).
func (c *Control) UpdateAccount(ctx context.Context, waba string, u AccountUpdate) error {
	return c.do(ctx, http.MethodPost, "/_fake/accounts/"+url.PathEscape(waba)+"/update", u, nil)
}

// Lock makes every send of a phone number or WABA fail with 131031.
func (c *Control) Lock(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/_fake/accounts/"+url.PathEscape(id)+"/lock", nil, nil)
}

// Unlock lifts Lock.
func (c *Control) Unlock(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/_fake/accounts/"+url.PathEscape(id)+"/unlock", nil, nil)
}

// BlockApp makes every send fail with code 4 for d (0 lifts the block).
func (c *Control) BlockApp(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/_fake/limits/app", map[string]Duration{"for": Duration(d)}, nil)
}

// BlockWABA makes every send of a WABA fail with 80007 for d (0 lifts it).
func (c *Control) BlockWABA(ctx context.Context, waba string, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/_fake/limits/waba/"+url.PathEscape(waba), map[string]Duration{"for": Duration(d)}, nil)
}

// Webhooks returns the webhook counters and the latest delivery attempts.
func (c *Control) Webhooks(ctx context.Context) (*WebhookStats, error) {
	var st WebhookStats
	return &st, c.do(ctx, http.MethodGet, "/_fake/webhooks", nil, &st)
}

func (c *Control) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("fakegraph control: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("fakegraph control: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fakegraph control: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("fakegraph control: %s %s: read answer: %w", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil && resp.StatusCode == http.StatusOK {
			return fmt.Errorf("fakegraph control: %s %s: decode answer: %w", method, path, err)
		}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("fakegraph control: %s %s: http %d: %s", method, path, resp.StatusCode, e.Error)
	}
	return nil
}
