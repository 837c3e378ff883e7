package expansion

import "testing"

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "a", "B": "b", "EMPTY": "", "NESTED": "$(A)"}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(B)z", "xaybz"},
		{"$(A)$(A)", "aa"},
		{"$(EMPTY)", ""},
		{"$(UNDEFINED)", "$(UNDEFINED)"},
		{"$(NESTED)", "$(A)"}, // values are not expanded again
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$a"},
		{"$$$$(A)", "$$(A)"},
		{"$$", "$"},
		{"$", "$"},
		{"foo$", "foo$"},
		{"$x", "$x"},
		{"$A", "$A"},
		{"$(A", "$(A"},
		{"$(A$(B)", "$(A$(B)"},
		{"$()", "$()"},
		{"$(A)$$(B)$(C)", "a$(B)$(C)"},
		{"$é", "$é"},
		{"$\xff", "$\uFFFD"},
		{"(A)", "(A)"},
	}
	for _, tc := range tests {
		if got := Expand(tc.in, MappingFor(env)); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMappingForOrder(t *testing.T) {
	m := MappingFor(map[string]string{"A": "first"}, map[string]string{"A": "second", "B": "b"})
	if got := Expand("$(A) $(B)", m); got != "first b" {
		t.Errorf("got %q, want %q", got, "first b")
	}
}
