package bootstraptoken

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	tests := []struct {
		in   string
		want Token
		ok   bool
	}{
		{in: "abcdef.0123456789abcdef", want: Token{ID: "abcdef", Secret: "0123456789abcdef"}, ok: true},
		{in: "000000.zzzzzzzzzzzzzzzz", want: Token{ID: "000000", Secret: "zzzzzzzzzzzzzzzz"}, ok: true},
		{in: ""},
		{in: "abcdef"},
		{in: "abcdef."},
		{in: "abcdef0123456789abcdef"},
		{in: "ABCDEF.0123456789abcdef"},
		{in: "abcde.0123456789abcdef"},
		{in: "abcdefg.0123456789abcdef"},
		{in: "abcdef.0123456789abcde"},
		{in: "abcdef.0123456789abcdef0"},
		{in: "abcdef.0123456789abcde_"},
		{in: "abcdef.0123456789.bcdef"},
		{in: "abcdef:0123456789abcdef"},
		{in: " abcdef.0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseToken(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrMalformedToken) {
					t.Fatalf("ParseToken(%q) = %v, %v; want ErrMalformedToken", tt.in, got, err)
				}
				if tt.in != "" && strings.Contains(err.Error(), tt.in) {
					t.Errorf("the error repeats the token: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseToken(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	shape := regexp.MustCompile(`\A[a-z0-9]{6}\.[a-z0-9]{16}\z`)
	seen := map[string]bool{}
	counts := map[rune]int{}
	const n = 2000
	for i := 0; i < n; i++ {
		tok, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		s := tok.String()
		if !shape.MatchString(s) {
			t.Fatalf("Generate() = %q: not [a-z0-9]{6}.[a-z0-9]{16}", s)
		}
		if _, err := ParseToken(s); err != nil {
			t.Fatalf("ParseToken(Generate()): %v", err)
		}
		if seen[s] {
			t.Fatalf("Generate() repeated %q", s)
		}
		seen[s] = true
		for _, c := range tok.ID + tok.Secret {
			counts[c]++
		}
	}
	// Every one of the 36 characters shows up (n*22 draws, ~1200 each).
	if len(counts) != len(tokenChars) {
		t.Errorf("%d distinct characters drawn, want %d", len(counts), len(tokenChars))
	}
}
