package deadletter

import "testing"

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"15551234567":                 "•••••••4567",
		"123":                         "••3",
		"US.13491208655302741918":     "US.••••••••••••••••1918",
		"US.ENT.11815799212886844830": "US.ENT.••••••••••••••••4830",
		"BR.AbC9":                     "BR.•••9",
		"":                            "",
	} {
		if got := MaskRecipient(in); got != want {
			t.Errorf("MaskRecipient(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		`{"to":"+15551234567","id":42}`:      `{"to":"+•••••••4567","id":42}`,
		`not json to=15551234567&x=1234567`:  `not json to=•••••••4567&x=•••••67`,
		`US.13491208655302741918 and 123456`: `US.••••••••••••••••1918 and 123456`,
		"\xff\xfe15551234567":                "\xff\xfe•••••••4567",
	} {
		if got := MaskNumbers(in); got != want {
			t.Errorf("MaskNumbers(%q) = %q, want %q", in, got, want)
		}
	}
}
