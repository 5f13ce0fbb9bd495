package queue

import "testing"

func TestPeekID(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"order-42","message":{"to":"+1 555"}}`:   "order-42",
		`{"id":"order-42","phone_number_id":12}`:        "order-42",
		`{"id":42}`:                                     "",
		`{"id":"a b"}`:                                  "",
		`{"id":""}`:                                     "",
		`not json {"id":"x"}`:                           "",
		`["id","x"]`:                                    "",
		`{"message":{"id":"inner"}}`:                    "",
		`{"id":"` + string(make([]byte, 0)) + `x` + `"`: "",
	} {
		if got := PeekID([]byte(body)); got != want {
			t.Errorf("PeekID(%s) = %q, want %q", body, got, want)
		}
	}
}
