package fakegraph

import (
	"context"
	"net/url"
	"testing"
	"time"
)

type debugToken struct {
	Data struct {
		AppID          string   `json:"app_id"`
		Type           string   `json:"type"`
		Application    string   `json:"application"`
		IsValid        bool     `json:"is_valid"`
		ExpiresAt      int64    `json:"expires_at"`
		Scopes         []string `json:"scopes"`
		GranularScopes []struct {
			Scope     string   `json:"scope"`
			TargetIDs []string `json:"target_ids"`
		} `json:"granular_scopes"`
		Error *struct {
			Code    int    `json:"code"`
			Subcode int    `json:"subcode"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"data"`
}

func TestDebugToken(t *testing.T) {
	t.Parallel()
	clock := newClock()
	exp := clock.Now().Add(time.Hour)
	e := setup(t, Config{Now: clock.Now, Tokens: []string{"app"}, Scenario: &Scenario{
		Tokens:       []Token{{Token: "user", ExpiresAt: &exp}, {Token: "narrow", Scopes: []string{"whatsapp_business_messaging"}}},
		PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone, WABAID: "555"}},
		App:          App{ID: "42", Name: "acme"},
	}})
	ctx := context.Background()
	get := func(input string) debugToken {
		t.Helper()
		var out debugToken
		if err := e.graph.Get(ctx, "debug_token", url.Values{"input_token": {input}}, "app", &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	d := get("user").Data
	if !d.IsValid || d.AppID != "42" || d.Application != "acme" || d.ExpiresAt != exp.Unix() || d.Type != "SYSTEM_USER" {
		t.Errorf("valid token: %+v", d)
	}
	if !oneOf("whatsapp_business_messaging", d.Scopes) || !oneOf("whatsapp_business_management", d.Scopes) {
		t.Errorf("scopes %v", d.Scopes)
	}
	if len(d.GranularScopes) != 2 || d.GranularScopes[0].TargetIDs[0] != "555" {
		t.Errorf("granular scopes %+v", d.GranularScopes)
	}
	if d := get("narrow").Data; !d.IsValid || len(d.Scopes) != 1 {
		t.Errorf("narrow token: %+v", d)
	}
	if d := get("forged").Data; d.IsValid || d.Error == nil || d.Error.Code != 190 {
		t.Errorf("forged token: %+v", d)
	}
	clock.Add(time.Hour)
	if d := get("user").Data; d.IsValid || d.Error == nil || d.Error.Subcode != 463 {
		t.Errorf("expired token: %+v", d)
	}
	// The caller's own token is checked like any request's.
	err := e.graph.Get(ctx, "debug_token", url.Values{"input_token": {"app"}}, "user", nil)
	apiError(t, err, 190)
	err = e.graph.Get(ctx, "debug_token", nil, "app", nil)
	apiError(t, err, 100)
}

func TestPhoneNumberFields(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{PhoneNumbers: []PhoneNumber{
		{PhoneNumberID: testPhone, WABAID: "555", DisplayPhoneNumber: "+1 555-010-0001", VerifiedName: "Acme", QualityRating: "RED", MPS: 1000},
	}}})
	ctx := context.Background()
	var p struct {
		ID                     string `json:"id"`
		VerifiedName           string `json:"verified_name"`
		DisplayPhoneNumber     string `json:"display_phone_number"`
		QualityRating          string `json:"quality_rating"`
		Status                 string `json:"status"`
		CodeVerificationStatus string `json:"code_verification_status"`
		NameStatus             string `json:"name_status"`
		Throughput             struct {
			Level string `json:"level"`
		} `json:"throughput"`
	}
	fields := url.Values{"fields": {"status,quality_rating,verified_name,display_phone_number,throughput,code_verification_status,name_status"}}
	if err := e.graph.Get(ctx, testPhone, fields, "t", &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != testPhone || p.VerifiedName != "Acme" || p.QualityRating != "RED" || p.Status != "CONNECTED" ||
		p.Throughput.Level != "HIGH" || p.CodeVerificationStatus != "VERIFIED" || p.NameStatus != "APPROVED" || p.DisplayPhoneNumber != "+1 555-010-0001" {
		t.Errorf("fields %+v", p)
	}
	// Only what was asked for, and the id.
	var few map[string]any
	if err := e.graph.Get(ctx, testPhone, url.Values{"fields": {"status"}}, "t", &few); err != nil {
		t.Fatal(err)
	}
	if len(few) != 2 || few["status"] != "CONNECTED" {
		t.Errorf("fields=status gave %v", few)
	}
	err := e.graph.Get(ctx, testPhone, url.Values{"fields": {"status,colour"}}, "t", nil)
	ae := apiError(t, err, 100)
	if ae.Message != "(#100) Tried accessing nonexisting field (colour) on node type (WhatsAppBusinessPhoneNumber)" {
		t.Errorf("got %q", ae.Message)
	}
	err = e.graph.Get(ctx, "999", nil, "t", nil)
	ae = apiError(t, err, 100)
	if ae.Subcode != 33 {
		t.Errorf("unknown node: %+v", ae)
	}
	// A locked number reads as restricted.
	e.sim.SetLocked(testPhone, true)
	if err := e.graph.Get(ctx, testPhone, url.Values{"fields": {"status"}}, "t", &few); err != nil || few["status"] != "RESTRICTED" {
		t.Errorf("locked: %v %v", few, err)
	}
	// The WABA is a node too.
	var waba map[string]any
	if err := e.graph.Get(ctx, "555", nil, "t", &waba); err != nil || waba["id"] != "555" {
		t.Errorf("waba: %v %v", waba, err)
	}
}

func TestMessageTemplates(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{
		PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone, WABAID: "555"}, {PhoneNumberID: "2", WABAID: "666"}},
		Templates: []Template{
			{Name: "order_update", Languages: []string{"en_US", "pt_BR"}, BodyParams: 1},
			{Name: "order_cancelled", Language: "en_US", Status: "PAUSED"},
			{Name: "other_waba", Language: "en_US", WABAID: "666"},
		},
	}})
	type list struct {
		Data []struct {
			Name       string `json:"name"`
			Language   string `json:"language"`
			Status     string `json:"status"`
			Category   string `json:"category"`
			ID         string `json:"id"`
			Components []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"components"`
		} `json:"data"`
	}
	ctx := context.Background()
	var l list
	if err := e.graph.Get(ctx, "555/message_templates", url.Values{"name": {"order_update"}}, "t", &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Data) != 2 || l.Data[0].Language != "en_US" || l.Data[1].Language != "pt_BR" || l.Data[0].Status != "APPROVED" ||
		l.Data[0].Category != "UTILITY" || l.Data[0].Components[0].Type != "BODY" || l.Data[0].Components[0].Text == "" || l.Data[0].ID == l.Data[1].ID {
		t.Errorf("order_update: %+v", l)
	}
	l = list{}
	if err := e.graph.Get(ctx, "555/message_templates", url.Values{"name": {"order"}}, "t", &l); err != nil || len(l.Data) != 3 {
		t.Errorf("name=order: %+v %v", l, err)
	}
	l = list{}
	if err := e.graph.Get(ctx, "555/message_templates", url.Values{"status": {"PAUSED"}}, "t", &l); err != nil || len(l.Data) != 1 || l.Data[0].Name != "order_cancelled" {
		t.Errorf("status=PAUSED: %+v %v", l, err)
	}
	l = list{}
	if err := e.graph.Get(ctx, "555/message_templates", url.Values{"name": {"other_waba"}}, "t", &l); err != nil || len(l.Data) != 0 {
		t.Errorf("another WABA's template: %+v %v", l, err)
	}
	l = list{}
	if err := e.graph.Get(ctx, "555/message_templates", url.Values{"name": {"nothing"}}, "t", &l); err != nil || l.Data == nil || len(l.Data) != 0 {
		t.Errorf("no match: %+v %v", l, err)
	}
	err := e.graph.Get(ctx, "777/message_templates", nil, "t", nil)
	apiError(t, err, 100)
}
