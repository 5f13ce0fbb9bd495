package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
)

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
