package bench

import (
	"testing"

	"github.com/google/uuid"
)

func TestKeyPattern(t *testing.T) {
	for name, want := range map[string]string{
		"waq:lj:11880:17": "waq:lj:N:N",
		"waq:j:{018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90}:h": "waq:j:{*}:h",
		"waq:lx:0a1b2c3d4e5f60":                          "waq:lx:H",
		"waq:recipient-key":                              "waq:recipient-key",
		"waq:dlq:\x01\xfe":                               "waq:dlq:H",
		"waq:{dlq:3}:all":                                "waq:{*}:all",
		"":                                               "",
		"a::b":                                           "a::b",
		"waq:rl:{10654000000001}":                        "waq:rl:{*}",
		"waq:cafe":                                       "waq:cafe",
	} {
		if got := keyPattern(name); got != want {
			t.Errorf("keyPattern(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestJobIDs: the bench's job ids are UUIDv7s in canonical form (what the
// producer makes), and each maps back to its sequence number; ids of
// another run, or not of this shape, map to none.
func TestJobIDs(t *testing.T) {
	r := newRecorder(5000)
	for _, i := range []int{0, 1, 4095, 4999} {
		id := r.id(i)
		u, err := uuid.Parse(id)
		if err != nil || u.String() != id || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Errorf("id %d = %q: %v, version %d, variant %v", i, id, err, u.Version(), u.Variant())
		}
		if got, ok := r.seq(id); !ok || got != i {
			t.Errorf("seq(%q) = %d %v, want %d", id, got, ok, i)
		}
	}
	other := newRecorder(5000)
	for _, bad := range []string{other.id(3), r.nonce, r.nonce + "00000000138", r.nonce + "0000000013888", r.nonce + "00000000138g",
		r.nonce + "000000001388", "b18f-3", "", "018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90"} {
		if i, ok := r.seq(bad); ok {
			t.Errorf("seq(%q) = %d, want none", bad, i)
		}
	}
}
