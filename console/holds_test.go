package console

import (
	"html"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/throttle"
)

// TestHolds: the overview lists held templates, the low-quality holds of
// marketing (RED template, FLAGGED number) with what the policy does to
// them, and the accounts an account webhook restricted, each with the
// webhook's reason; nothing of it when nothing is held.
func TestHolds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		policy, says string
	}{
		{"", "marketing sends are held (WAQ_LOW_QUALITY_MARKETING=hold)"},
		{throttle.LowQualitySlow, "marketing sends are slowed to one a second (WAQ_LOW_QUALITY_MARKETING=slow)"},
		{throttle.LowQualitySend, "marketing sends go on (WAQ_LOW_QUALITY_MARKETING=send)"},
	} {
		f := setup(t, func(o *Options) { o.LowQualityMarketing, o.TemplateHoldMax = tt.policy, 24*time.Hour })
		c := f.client(t)
		c.signIn()
		r := c.get(Prefix)
		for _, want := range []string{"No template is held.", "No template is RED, no number is flagged.", "No account is restricted."} {
			if !strings.Contains(r.body, want) {
				t.Errorf("nothing held: the overview lacks %q", want)
			}
		}

		since := f.clock.Now().Add(-3 * time.Hour).UTC()
		f.ready.Templates = []throttle.TemplateState{
			{Name: "promo", Language: "en_US", WABAID: "102290129340398", Status: "PAUSED", Category: "MARKETING", Reason: "LOW_QUALITY: paused for 3 hours", Since: since},
			{Name: "old_offer", Language: "de", Status: "REJECTED", Reason: "INCORRECT_CATEGORY", Since: since},
			{Name: "retry_me", Language: "en_US", Status: "DISABLED", Reason: "code 132016: Template disabled", Since: since, Until: since.Add(15 * time.Minute)},
			{Name: "welcome", Language: "en_US", Quality: "RED", QualitySince: since.Add(time.Hour)},
		}
		f.ready.NumberQuality = []throttle.NumberQuality{{DisplayPhoneNumber: "15550001111", PhoneNumberID: pn, Event: "FLAGGED", CurrentLimit: "TIER_1K", Since: since}}
		f.ready.Paused = append(f.ready.Paused, throttle.State{Key: "pause:waba:102290129340398", PhoneNumberID: "106540352242929", Scope: "waba",
			Reason: "account_update ACCOUNT_RESTRICTION: RESTRICTED_BIZ_INITIATED_MESSAGING", Since: since, Source: "webhook"})
		r = c.get(Prefix)
		body := html.UnescapeString(r.body)
		for _, want := range []string{
			// Held templates: status, the webhook's reason, since, and
			// what happens to the jobs.
			`<td><code>promo</code></td><td>en_US</td><td>102290129340398</td><td>PAUSED</td><td>LOW_QUALITY: paused for 3 hours</td><td>` + when(since),
			"held until it is approved again, parked as template after " + when(since.Add(24*time.Hour)),
			`<td><code>old_offer</code></td><td>de</td><td>—</td><td>REJECTED</td><td>INCORRECT_CATEGORY</td>`,
			"parked as template at once: never sent",
			"code 132016: Template disabled", "learned from a send: one job tries again at " + when(since.Add(15*time.Minute)),
			// Low quality: a RED template and a FLAGGED number, what the
			// policy does to marketing, and that the rest goes.
			`<td><code>template welcome (en_US)</code></td><td>RED</td><td>message_template_quality_update: quality RED</td><td>` + when(since.Add(time.Hour)),
			`<td><code>phone number 15550001111 (` + pn + `)</code></td><td>FLAGGED</td><td>phone_number_quality_update: FLAGGED, messaging limit TIER_1K</td>`,
			"<td>" + tt.says + "</td>",
			"Utility and authentication sends, and messages of unknown category, always go.",
			// Restricted accounts, with the webhook's reason.
			`<td><code>106540352242929</code></td><td><code>pause:waba:102290129340398</code></td><td>account_update ACCOUNT_RESTRICTION: RESTRICTED_BIZ_INITIATED_MESSAGING</td>`,
			"until Meta lifts it",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("policy %q: the overview lacks %q", tt.policy, want)
			}
		}
		// The RED template is not among the held templates (its other
		// jobs go), and a pause by a send error is not a restriction.
		if held := section(body, `id="held-templates"`); strings.Contains(held, "welcome") || !strings.Contains(held, "retry_me") {
			t.Errorf("held templates: %s", held)
		}
		if acc := section(body, `id="restricted"`); strings.Contains(acc, "190: access token expired") {
			t.Errorf("a token pause is listed as an account restriction: %s", acc)
		}
	}
}

// section is the table of body that opens with id, up to its end.
func section(body, id string) string {
	_, s, _ := strings.Cut(body, id)
	s, _, _ = strings.Cut(s, "</table>")
	return s
}
